package guard

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds are the committed seed corpora, regenerated with
// MEDSEC_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus.
func fuzzSeeds(t testing.TB) map[string][][]byte {
	le := binary.LittleEndian
	return map[string][][]byte{
		"FuzzValidateDICOM": {
			cleanDICOM("1"),
			part10(peStub(), tsExplicitLittle, encode(mrDataset("2"), true, le)),
			part10(nil, tsImplicitLittle, encode(mrDataset("3"), false, le)),
			part10(nil, tsExplicitBig, encode(mrDataset("4"), true, binary.BigEndian)),
			part10(nil, tsDeflated, deflated(encode(mrDataset("5"), true, le))),
			part10(nil, "1.2.840.10008.1.2.4.50", encodeFragments([]byte{1, 2}, []byte{3, 4})),
			part10(nil, tsExplicitLittle, encode([]el{nested(6)}, true, le)),
			dicomdir(`DICOM\IM1`, `DICOM\IM2`),
		},
		"FuzzScanZip": {
			zipOf(t, true, zf{"DICOMDIR", dicomdir(`A`)}, zf{"A", cleanDICOM("1")}),
			zipOf(t, false, zf{"a.zip", zipOf(t, false, zf{"b.exe", peStub()})}),
			overlap(t, zipOf(t, false, zf{"a.txt", []byte("abcdef")})),
			zipOf(t, true, zf{"word/vbaProject.bin", []byte("x")}, zf{"../up", nil}),
		},
	}
}

func addSeeds(f *testing.F) {
	for _, s := range fuzzSeeds(f)[f.Name()] {
		f.Add(s)
	}
}

// FuzzValidateDICOM: any bytes, no panic, no allocation for declared
// lengths, and a problem reported for anything not well formed.
func FuzzValidateDICOM(f *testing.F) {
	addSeeds(f)
	lim := dicomLimits{maxDepth: 8, maxRefs: 16, maxInflated: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, size := range []int64{int64(len(data)), -1} {
			res, err := validateDICOM(bytes.NewReader(data), size, lim)
			if err != nil {
				t.Fatalf("I/O error from an in-memory reader: %v", err)
			}
			if len(res.referenced) > lim.maxRefs {
				t.Fatalf("%d references kept, limit %d", len(res.referenced), lim.maxRefs)
			}
			if res.problem == "" && !res.hasPrefix {
				t.Fatalf("well formed without a DICM prefix")
			}
		}
	})
}

// FuzzScanZip walks arbitrary bytes as an uploaded zip (and whatever the
// content turns out to be) with small limits: no panic, bounded reads.
func FuzzScanZip(f *testing.F) {
	addSeeds(f)
	lim := Limits{MaxArchiveDepth: 3, MaxArchiveEntries: 64, MaxArchiveBytes: 1 << 20, MaxSpoolBytes: 1 << 20}
	s := New(Config{Limits: lim, Workers: 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := s.ScanReader(context.Background(), "upload.zip", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if inflated := rep.Summary.Bytes - int64(len(data)); inflated > lim.MaxArchiveBytes+int64(len(data))*int64(lim.MaxArchiveDepth) {
			t.Fatalf("read %d bytes beyond the input, budget %d", inflated, lim.MaxArchiveBytes)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set MEDSEC_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz seed corpora")
	}
	for name, seeds := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", name)
		must(t, os.MkdirAll(dir, 0o755))
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
		}
	}
}
