package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

// mkcdCmd writes import media as a referring clinic burns it, for the
// command-line scripts: "mkcd DIR MRN" makes DIR/DICOM/ST01/SE0n/IM00n (one
// study of two series, two images each, for the patient with MRN), a
// polyglot DIR/DICOM/POLY/IM0001 (a PE header in its preamble; benign),
// AUTORUN.INF and README.TXT.
func mkcdCmd(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkcd DIR MRN")
		return 2
	}
	if err := mkcd(args[0], args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func mkcd(dir, mrn string) error {
	files := map[string][]byte{
		"AUTORUN.INF": []byte("[autorun]\nopen=viewer.exe\n"),
		"README.TXT":  []byte("Open the study with the viewer on this disc.\n"),
	}
	study, err := dicomtest.Generate(dicomtest.Options{Seed: 61, Patients: 1, SeriesPerStudy: 2, InstancesPerSeries: 2,
		Override: []dicomtest.Patient{{ID: mrn}}})
	if err != nil {
		return err
	}
	for i, in := range study {
		files[fmt.Sprintf("DICOM/ST01/SE%02d/IM%03d", i/2, i%2+1)] = in.Data
	}
	pe := make([]byte, 128)
	copy(pe, "MZ")
	binary.LittleEndian.PutUint32(pe[0x3c:], 0x40)
	copy(pe[0x40:], "PE\x00\x00")
	poly, err := dicomtest.Generate(dicomtest.Options{Seed: 62, Patients: 1, SeriesPerStudy: 1, InstancesPerSeries: 1, Preamble: pe,
		Override: []dicomtest.Patient{{ID: mrn}}})
	if err != nil {
		return err
	}
	files["DICOM/POLY/IM0001"] = poly[0].Data
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
