package dicomtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(Options{Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(Options{Seed: 42})
	c, _ := Generate(Options{Seed: 43})
	if got, want := len(a), 2*1*2*3; got != want {
		t.Fatalf("got %d instances, want %d", got, want)
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("instance %d differs between runs with one seed", i)
		}
	}
	if bytes.Equal(a[0].Data, c[0].Data) {
		t.Error("different seeds gave the same file")
	}
}

func TestGeneratedFilesParse(t *testing.T) {
	ins, err := Generate(Options{Seed: 1, Preamble: []byte("MZ"), BurnedInAnnotation: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if !bytes.HasPrefix(in.Data, []byte("MZ")) || string(in.Data[128:132]) != "DICM" {
			t.Fatal("preamble or DICM prefix missing")
		}
		ds, err := dicom.Parse(bytes.NewReader(in.Data), int64(len(in.Data)), nil, dicom.SkipProcessingPixelDataValue())
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		for _, tc := range []struct {
			tag  tag.Tag
			want string
		}{
			{tag.PatientName, in.Patient.PersonName()},
			{tag.PatientID, in.Patient.ID},
			{tag.StudyInstanceUID, in.StudyInstanceUID},
			{tag.BurnedInAnnotation, "YES"},
			{tag.TransferSyntaxUID, ExplicitVRLittleEndian},
		} {
			e, err := ds.FindElementByTag(tc.tag)
			if err != nil {
				t.Fatalf("%s missing", tc.tag)
			}
			if got := dicom.MustGetStrings(e.Value)[0]; got != tc.want {
				t.Errorf("%s = %q, want %q", tc.tag, got, tc.want)
			}
		}
	}
}

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	got, err := WriteDir(dir, Options{Seed: 3, Patients: 1})
	if err != nil {
		t.Fatal(err)
	}
	for rel, in := range got {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || !bytes.Equal(data, in.Data) {
			t.Errorf("%s: file differs from the instance (%v)", rel, err)
		}
	}
	if len(got) != 6 {
		t.Errorf("wrote %d files, want 6", len(got))
	}
}

func TestPreambleTooLong(t *testing.T) {
	if _, err := Generate(Options{Preamble: make([]byte, 129)}); err == nil {
		t.Error("129-byte preamble: got no error")
	}
}

// The implicit VR variant carries an undefined-length private sequence,
// as some vendors' files do; the library cannot read such a file as it is
// (dicomdeid's guard cuts the sequence out), so only its header is checked.
func TestImplicitHeader(t *testing.T) {
	ins, err := Generate(Options{Seed: 1, Implicit: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ins[0].Data[:400], []byte(ImplicitVRLittleEndian+"\x00")) {
		t.Error("implicit transfer syntax not in the file meta information")
	}
}

func TestOverride(t *testing.T) {
	ins, err := Generate(Options{Seed: 5, Patients: 2, Override: []Patient{{ID: "MRN-100000", NameHangul: "김^민수"}}})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := Generate(Options{Seed: 5, Patients: 2})
	for i, in := range ins {
		first := in.Patient.ID == "MRN-100000"
		if first != (i < len(ins)/2) {
			t.Errorf("instance %d: patient %q; want the override for patient 0 only", i, in.Patient.ID)
		}
		if first && (in.Patient.NameHangul != "김^민수" || in.Patient.NameLatin != plain[i].Patient.NameLatin) {
			t.Errorf("instance %d: %+v, want the overridden ID and Hangul name, the generated rest", i, in.Patient)
		}
		if !bytes.Contains(in.Data, []byte(in.Patient.ID)) {
			t.Errorf("instance %d: the file does not carry its patient's ID", i)
		}
	}
}
