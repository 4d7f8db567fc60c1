package demo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/medsec/medsec/internal/records"
)

// ImagingReport shows a CD from another hospital going through PACS intake
// (location 5): the clean study stored sealed for its patient, the
// polyglot kept out, and why.
type ImagingReport struct {
	Origin      string `json:"origin"`
	Stored      int    `json:"stored"` // DICOM instances stored through the door
	Studies     int    `json:"studies"`
	Quarantined int    `json:"quarantined"`
	// ReadBack counts the instances the attending physician read back
	// through the door; PreambleZeroed says every one had a zero preamble.
	ReadBack       int      `json:"read_back"`
	PreambleZeroed bool     `json:"preamble_zeroed"`
	Why            []string `json:"why"` // per quarantined file: path: detector (severity): reason
}

const demoOrigin = "CD from Busan referral clinic, MRI of the knee"

// importImaging burns a CD tree outside the data directory (a study of
// the first patient, with their MRN and name as the referring clinic wrote
// them, and a polyglot whose preamble holds a benign PE header), imports
// it, and has the attending physician read the study back. The plaintext
// search at the end of the demo looks for the name in every file.
func (s *scenario) importImaging(ctx context.Context) error {
	pt, person := s.patient[0], s.people[0]
	cd, err := os.MkdirTemp("", "medsec-demo-cd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cd)
	study, err := burnCD(cd, dicomtest.Patient{ID: pt.MRN, NameHangul: person.Name})
	if err != nil {
		return err
	}
	in, err := imaging.New(ctx, imaging.Config{DB: s.h.DB, Keys: s.h.Keys, Audit: s.h.Audit, Door: s.h.Door, Alerts: s.h.Alerts, Scan: guard.Config{}})
	if err != nil {
		return err
	}
	rep, err := in.Import(ctx, imaging.Request{Paths: []string{cd}, Origin: demoOrigin, Operator: "demo"})
	if err != nil {
		return err
	}
	s.rep.Imaging = imagingReport(rep, cd)
	if err := s.readStudy(ctx, study.StudyInstanceUID); err != nil {
		return err
	}
	r := s.rep.Imaging
	s.opt.Log("imported a %s: %d images of %d study stored sealed for patient %s (matched by MRN, preamble zeroed); %d file quarantined: %s",
		demoOrigin, r.Stored, r.Studies, pt.Pseudonym, r.Quarantined, strings.Join(r.Why, "; "))
	s.opt.Log("Dr. Kim read the study back through the door: %d images, every preamble zero: %v", r.ReadBack, r.PreambleZeroed)
	return nil
}

// burnCD writes the demo media and returns the clean study's first image.
func burnCD(dir string, p dicomtest.Patient) (dicomtest.Instance, error) {
	study, err := dicomtest.Generate(dicomtest.Options{Seed: 2026, Patients: 1, SeriesPerStudy: 2, InstancesPerSeries: 2,
		Override: []dicomtest.Patient{p}})
	if err != nil {
		return dicomtest.Instance{}, err
	}
	poly, err := dicomtest.Generate(dicomtest.Options{Seed: 2027, Patients: 1, SeriesPerStudy: 1, InstancesPerSeries: 1,
		Preamble: benignPEHeader(), Override: []dicomtest.Patient{p}})
	if err != nil {
		return dicomtest.Instance{}, err
	}
	files := map[string][]byte{"DICOM/EXTRA/IM0001": poly[0].Data}
	for i, in := range study {
		files[fmt.Sprintf("DICOM/ST0001/SE%04d/IM%04d", i/2+1, i%2+1)] = in.Data
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return dicomtest.Instance{}, err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return dicomtest.Instance{}, err
		}
	}
	return study[0], nil
}

// benignPEHeader has the shape of a Windows executable header ("MZ",
// e_lfanew pointing at "PE\0\0") and nothing else: it runs nothing.
func benignPEHeader() []byte {
	b := make([]byte, 128)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	return b
}

func imagingReport(rep *imaging.Report, root string) ImagingReport {
	r := ImagingReport{Origin: rep.Origin, Stored: rep.Stored, Studies: rep.Studies, Quarantined: rep.Quarantined}
	for _, f := range rep.Files {
		if f.Outcome == imaging.Quarantined {
			rel, _ := filepath.Rel(root, f.Path)
			r.Why = append(r.Why, filepath.ToSlash(rel)+": "+f.Reason)
		}
	}
	return r
}

func (s *scenario) readStudy(ctx context.Context, studyUID string) error {
	got, err := s.h.Door.ImagingStudy(ctx, records.Request{Who: s.staff["dr.kim"], Purpose: "TREAT"}, studyUID)
	if err != nil {
		return err
	}
	r := &s.rep.Imaging
	r.ReadBack, r.PreambleZeroed = len(got), len(got) > 0
	for _, in := range got {
		if len(in.Data) < 128 || !bytes.Equal(in.Data[:128], make([]byte, 128)) {
			r.PreambleZeroed = false
		}
	}
	if r.ReadBack != r.Stored || r.Quarantined != 1 {
		return fmt.Errorf("%w: %d stored, %d read back, %d quarantined", errStep, r.Stored, r.ReadBack, r.Quarantined)
	}
	return nil
}
