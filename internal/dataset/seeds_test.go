package dataset_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
)

// TestWriteFuzzSeeds writes real outputs (a manifest, its signature, a
// Parquet data file, the spec) into the fuzz seed corpora when
// MEDSEC_UPDATE_FUZZ_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MEDSEC_UPDATE_FUZZ_SEEDS") == "" {
		t.Skip("set MEDSEC_UPDATE_FUZZ_SEEDS=1 to rewrite the seed corpora")
	}
	f := newFixture(t, lifecycletest.SQLite, 40)
	c := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatParquet)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(c.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	seeds := map[string][]byte{
		"FuzzParseManifest/real":  read(dataset.ManifestFile),
		"FuzzParseSignature/real": read(dataset.SignatureFile),
		"FuzzReadParquet/real":    read("data.parquet"),
		"FuzzParseSpec/synthetic": []byte(dataset.SyntheticSpec(5)),
	}
	for name, b := range seeds {
		path := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
