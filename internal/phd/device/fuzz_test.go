package device

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The device CA parses requests from devices it does not trust yet.
func FuzzParseCSR(f *testing.F) {
	f.Fuzz(func(t *testing.T, der []byte) {
		info, err := ParseCSR(der)
		if err != nil {
			return
		}
		if checkLabel("serial", info.Serial) != nil || checkLabel("model", info.Model) != nil || !acceptedKey(info.PublicKey) {
			t.Fatalf("ParseCSR accepted %+v", info)
		}
	})
}

// TestWriteCSRSeeds regenerates testdata/fuzz/FuzzParseCSR when
// MEDSEC_WRITE_FUZZ_SEEDS=1; otherwise it checks the seeds are there.
func TestWriteCSRSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseCSR")
	if os.Getenv("MEDSEC_WRITE_FUZZ_SEEDS") != "1" {
		if entries, err := os.ReadDir(dir); err != nil || len(entries) < 3 {
			t.Errorf("%s lacks its seeds; run with MEDSEC_WRITE_FUZZ_SEEDS=1", dir)
		}
		return
	}
	var seeds [][]byte
	for _, kt := range []KeyType{KeyP256, KeyEd25519} {
		key, _ := GenerateKey(kt)
		der, err := CreateCSR(key, "SN-"+string(kt), "MODEL-1")
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, der)
	}
	seeds = append(seeds, seeds[0][:len(seeds[0])/2])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
