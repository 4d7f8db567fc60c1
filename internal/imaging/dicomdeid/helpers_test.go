package dicomdeid

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

var testSecret = []byte("medsec test project secret, 32 bytes or more")

func newDeid(t testing.TB, opts Options) *Deidentifier {
	t.Helper()
	if opts.ProjectSecret == nil {
		opts.ProjectSecret = testSecret
	}
	d, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// run de-identifies data and parses the output back with the library,
// failing the test if the output is not valid DICOM.
func run(t testing.TB, d *Deidentifier, data []byte) (Report, dicom.Dataset, []byte) {
	t.Helper()
	var out bytes.Buffer
	rep, err := d.File(context.Background(), bytes.NewReader(data), &out)
	if err != nil {
		t.Fatalf("File: %v", err)
	}
	return rep, parseOutput(t, out.Bytes()), out.Bytes()
}

func parseOutput(t testing.TB, b []byte) dicom.Dataset {
	t.Helper()
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		t.Fatalf("output is not a Part 10 file")
	}
	if !bytes.Equal(b[:128], make([]byte, 128)) {
		t.Errorf("preamble of the output is not zeroed")
	}
	ds, err := dicom.Parse(bytes.NewReader(b), int64(len(b)), nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	return ds
}

func generate(t testing.TB, opts dicomtest.Options) []dicomtest.Instance {
	t.Helper()
	ins, err := dicomtest.Generate(opts)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	return ins
}

// find returns the top-level element with tag t, or nil.
func find(ds dicom.Dataset, t tag.Tag) *dicom.Element {
	for _, e := range ds.Elements {
		if e.Tag == t {
			return e
		}
	}
	return nil
}

func strs(e *dicom.Element) []string {
	if e == nil || e.Value.ValueType() != dicom.Strings {
		return nil
	}
	return e.Value.GetValue().([]string)
}

func str(e *dicom.Element) string { return strings.Join(strs(e), `\`) }

func items(e *dicom.Element) [][]*dicom.Element {
	if e == nil || e.Value.ValueType() != dicom.Sequences {
		return nil
	}
	var out [][]*dicom.Element
	for _, it := range e.Value.GetValue().([]*dicom.SequenceItemValue) {
		out = append(out, it.GetValue().([]*dicom.Element))
	}
	return out
}

// walkAll calls fn for every element, nested ones included.
func walkAll(elems []*dicom.Element, fn func(*dicom.Element)) {
	for _, e := range elems {
		fn(e)
		for _, it := range items(e) {
			walkAll(it, fn)
		}
	}
}

// allText joins every string value in the data set, nested ones included.
func allText(ds dicom.Dataset) string {
	var b strings.Builder
	walkAll(ds.Elements, func(e *dicom.Element) {
		for _, s := range strs(e) {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	})
	return b.String()
}
