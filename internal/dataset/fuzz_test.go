package dataset

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/medsec/medsec/internal/deid/tabular"
)

// The parsers of what comes from disk or from people: manifests and their
// signatures (a dataset handed back for verification), job journals (a job
// directory may be damaged), specs, and Parquet files (`deid table`,
// `risk`). Seed corpora are in testdata/fuzz; regenerate the real-output
// seeds with MEDSEC_UPDATE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds.
//
//	go test -run '^$' -fuzz FuzzParseManifest -fuzztime 60s ./internal/dataset

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":"medsec-dataset-manifest/1","files":[{"name":"data.csv","sha256":"` + hex64 + `","bytes":1,"rows":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("error %v is not ErrTampered", err)
			}
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("a parsed manifest does not parse again: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func FuzzParseSignature(f *testing.F) {
	s := Signature{Format: SignatureFormat, Key: "medsec-datasets-x+01234567+AQ", Signature: string(bytes.Repeat([]byte("A"), 86)) + "=="}
	b, _ := s.encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("error %v is not ErrTampered", err)
			}
			return
		}
		if again, _ := s.encode(); !bytes.Equal(again, b) {
			t.Fatalf("accepted a signature file that is not canonical: %q", b)
		}
	})
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"format":"medsec-dataset-job/1","dataset":"ds_x","spec_sha256":"` + hex64 + `","output_format":"csv","unit_size":20,"units":[{"index":0,"sha256":"` + hex64 + `","rows":3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := parseJournal(b)
		if err != nil {
			return
		}
		for _, u := range j.Units {
			if _, ok := j.unit(u.Index); !ok {
				t.Fatalf("unit %d listed but not found", u.Index)
			}
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(SyntheticSpec(5)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b, nil, ".")
		if err != nil {
			if !errors.Is(err, ErrSpec) && !errors.Is(err, tabular.ErrSpec) {
				t.Fatalf("error %v is neither ErrSpec nor tabular.ErrSpec", err)
			}
			return
		}
		d := s.deidSpec()
		if err := d.Validate(&tabular.Table{Columns: s.columns()}); err != nil {
			t.Fatalf("accepted a spec whose de-identification does not fit its fields: %v", err)
		}
		if _, _, err := s.Cohort.Window(); err != nil {
			t.Fatalf("accepted a spec with a bad window: %v", err)
		}
	})
}

func FuzzReadParquet(f *testing.F) {
	var buf bytes.Buffer
	if err := writeParquet(&buf, &tabular.Table{Columns: []string{"a", "b"}, Rows: [][]string{{"1", "x"}, {"2", ""}}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := ReadParquet(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrBadParquet) {
				t.Fatalf("error %v is not ErrBadParquet", err)
			}
			return
		}
		for _, r := range tab.Rows {
			if len(r) != len(tab.Columns) {
				t.Fatalf("row of %d cells under %d columns", len(r), len(tab.Columns))
			}
		}
	})
}
