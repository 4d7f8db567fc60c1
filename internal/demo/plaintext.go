package demo

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Needles returns the byte strings that must never appear in plaintext in
// the data directory for these patients: names, RRNs and phone numbers,
// with and without their dashes.
func Needles(ps []PatientReport) [][]byte {
	var out [][]byte
	for _, p := range ps {
		for _, v := range []string{p.Name, p.RRN, p.Phone, strings.ReplaceAll(p.RRN, "-", ""), strings.ReplaceAll(p.Phone, "-", "")} {
			out = append(out, []byte(v))
		}
	}
	return out
}

// ScanPlaintext searches every file under dir for the needles and returns
// how many files it read and where it found any.
func ScanPlaintext(dir string, needles [][]byte) (int, []string, error) {
	files := 0
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(raw, n) {
				hits = append(hits, filepath.Base(path)+": "+string(n))
			}
		}
		return nil
	})
	return files, hits, err
}

func (s *scenario) scanPlaintext(when string) error {
	n, hits, err := ScanPlaintext(s.opt.Dir, append(Needles(s.rep.Patients), s.extraNeedles...))
	if err != nil {
		return err
	}
	s.rep.Plaintext.FilesScanned += n
	s.rep.Plaintext.Hits += len(hits)
	s.rep.Plaintext.Where = append(s.rep.Plaintext.Where, hits...)
	s.opt.Log("%s, searched %d files of the data directory for every name, RRN and phone number of the demo's patients (and the research cohort's phone numbers): %d found in plaintext", when, n, len(hits))
	return nil
}
