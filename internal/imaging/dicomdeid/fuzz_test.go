package dicomdeid

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// fuzzSeeds are small files covering each path of the guard and the
// profile. MEDSEC_WRITE_FUZZ_SEEDS=1 rewrites testdata/fuzz/FuzzFile from
// them.
func fuzzSeeds(t testing.TB) map[string][]byte {
	small := dicomtest.Options{Patients: 1, SeriesPerStudy: 1, InstancesPerSeries: 2, Rows: 2, Columns: 2}
	gen := func(mod func(*dicomtest.Options)) []byte {
		o := small
		mod(&o)
		return generate(t, o)[1].Data
	}
	private := append(implicitHeader(0x0009, 0x1010, undefinedLength),
		append(implicitHeader(0xFFFE, 0xE000, undefinedLength), append(itemDelim, seqDelim...)...)...)
	return map[string][]byte{
		"explicit":   gen(func(o *dicomtest.Options) {}),
		"implicit":   gen(func(o *dicomtest.Options) { o.Implicit = true }),
		"burned-in":  gen(func(o *dicomtest.Options) { o.BurnedInAnnotation = true }),
		"polyglot":   gen(func(o *dicomtest.Options) { o.Preamble = []byte("MZ\x90\x00\x03") }),
		"unknown-sq": rawFile(implicitTS, private, implicitHeader(0x0010, 0x0020, 4), []byte("ID01")),
		"nested":     rawFile(explicitTS, nested(5)),
		"encapsulated": rawFile("1.2.840.10008.1.2.4.50", explicitHeader(0x7FE0, 0x0010, "OB", undefinedLength),
			implicitHeader(0xFFFE, 0xE000, 0), implicitHeader(0xFFFE, 0xE000, 4), []byte{0xFF, 0xD8, 0xFF, 0xD9}, seqDelim),
		"huge-length": rawFile(implicitTS, implicitHeader(0x0010, 0x0010, 0xFFFFFFF0)),
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set MEDSEC_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzFile")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzFile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzFile feeds arbitrary bytes to File: it must return an error or valid
// DICOM with the identity removed, and never panic — the parser's panics
// are not recovered here, so a gap in the guard shows.
func FuzzFile(f *testing.F) {
	recoverParserPanics = false
	defer func() { recoverParserPanics = true }()
	for _, data := range fuzzSeeds(f) {
		f.Add(data)
	}
	d := newDeid(f, Options{CleanDescriptors: true, RetainLongitudinalModifiedDates: true, MaxFileSize: 1 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if _, err := d.File(context.Background(), bytes.NewReader(data), &out); err != nil {
			return
		}
		ds := parseOutput(t, out.Bytes())
		if got := str(find(ds, tag.PatientIdentityRemoved)); got != "YES" {
			t.Errorf("(0012,0062) = %q, want YES", got)
		}
		for _, e := range ds.Elements {
			if e.Tag.Group%2 == 1 || strings.HasPrefix(str(e), "Doe") && e.Tag == tag.PatientName {
				t.Errorf("element %s left in the output", e.Tag)
			}
		}
	})
}
