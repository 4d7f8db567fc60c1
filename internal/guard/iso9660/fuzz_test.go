package iso9660_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/medsec/medsec/internal/guard/iso9660"
	"github.com/medsec/medsec/internal/guard/iso9660/iso9660test"
)

func seeds() [][]byte {
	return [][]byte{
		iso9660test.Build([]iso9660test.Entry{{Path: "DICOM/IM1", Data: []byte("DICM")}, {Path: "AUTORUN.INF", Data: []byte("[autorun]")}}, iso9660test.Options{Label: "CD"}),
		iso9660test.Build([]iso9660test.Entry{{Path: "Long name.txt", Data: []byte("x")}}, iso9660test.Options{Joliet: true}),
		iso9660test.Build([]iso9660test.Entry{{Path: "A/B", Dir: true, Alias: "."}}, iso9660test.Options{}),
	}
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzImage when
// MEDSEC_WRITE_FUZZ_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set MEDSEC_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz seed corpora")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzImage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzImage opens and walks arbitrary bytes as an image: no panic, no
// read past the input, bounded work.
func FuzzImage(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	lim := iso9660.Limits{MaxDepth: 8, MaxEntries: 1000, MaxDirSize: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := iso9660.Open(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			return
		}
		n := 0
		_ = im.Walk(func(file iso9660.File, err error) error {
			n++
			if n > lim.MaxEntries+1 {
				t.Fatalf("walk visited %d entries, over the %d limit", n, lim.MaxEntries)
			}
			if err != nil || file.Dir {
				return nil
			}
			if file.Size > int64(len(data))*int64(lim.MaxEntries) {
				t.Fatalf("file %q claims %d bytes from a %d-byte image", file.Path, file.Size, len(data))
			}
			io.Copy(io.Discard, im.Open(file))
			return nil
		})
	})
}
