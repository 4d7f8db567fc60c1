package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// A job directory sits next to the output directory (OUT.partial) while a
// dataset is made. It holds the journal (which units are done, with the
// hash of each unit's sealed file), the sealed cohort, the sealed units and
// out/, where the dataset's files are staged before out/ is renamed to
// OUT. Everything in it that holds patient data is sealed under a key
// derived from the dataset's secret, which only the hospital's register
// holds; nothing is ever written in plaintext.

// JobFormat names the journal's layout.
const JobFormat = "medsec-dataset-job/1"

const (
	journalFile = "journal.json"
	cohortFile  = "cohort.sealed"
	stageDir    = "out"
)

// journal is the job's record of what is done.
type journal struct {
	Format   string `json:"format"`
	Dataset  string `json:"dataset"`
	Spec     string `json:"spec_sha256"`
	Output   string `json:"output_format"`
	UnitSize int    `json:"unit_size"`
	// Cohort is the hash of cohort.sealed once the screening is done.
	Cohort string      `json:"cohort_sha256,omitempty"`
	Units  []unitEntry `json:"units"`
}

// unitEntry is one unit of patients, done.
type unitEntry struct {
	Index  int    `json:"index"`
	SHA256 string `json:"sha256"`
	Rows   int    `json:"rows"`
}

// maxJournal bounds what parseJournal accepts.
const maxJournal = 8 << 20

// parseJournal reads a journal strictly; the job directory is on disk and
// may have been damaged or edited.
func parseJournal(b []byte) (*journal, error) {
	if len(b) > maxJournal {
		return nil, fmt.Errorf("job journal is too large (%d bytes)", len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j journal
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("read job journal: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("read job journal: data after the journal")
	}
	if j.Format != JobFormat {
		return nil, fmt.Errorf("read job journal: format %q, want %q", j.Format, JobFormat)
	}
	if j.UnitSize < 1 || j.UnitSize > 400 || !validFormat(j.Output) || len(j.Spec) != 64 {
		return nil, errors.New("read job journal: unit size, output format or spec digest out of range")
	}
	seen := map[int]bool{}
	for _, u := range j.Units {
		if u.Index < 0 || u.Rows < 0 || len(u.SHA256) != 64 || seen[u.Index] {
			return nil, fmt.Errorf("read job journal: unit %d is malformed or listed twice", u.Index)
		}
		seen[u.Index] = true
	}
	return &j, nil
}

// jobDir is the job directory of an output directory.
func jobDir(out string) string {
	return filepath.Clean(out) + ".partial"
}

func unitFile(i int) string { return fmt.Sprintf("unit-%06d.sealed", i) }

// writeJournal replaces the journal atomically.
func writeJournal(dir string, j *journal) error {
	slices.SortFunc(j.Units, func(a, b unitEntry) int { return a.Index - b.Index })
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, journalFile), append(b, '\n'))
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := closeSynced(tmp); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeSealed writes a sealed file and returns its hash.
func writeSealed(path string, sealed []byte) (string, error) {
	if err := writeFileAtomic(path, sealed); err != nil {
		return "", err
	}
	sum := sha256.Sum256(sealed)
	return hex.EncodeToString(sum[:]), nil
}

// readVerified reads a file and checks it against the hash the journal
// holds; a missing or changed file gives an error (the unit is redone).
func readVerified(path, want string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("%s does not match the hash in the job journal", filepath.Base(path))
	}
	return b, nil
}

func (j *journal) unit(i int) (unitEntry, bool) {
	for _, u := range j.Units {
		if u.Index == i {
			return u, true
		}
	}
	return unitEntry{}, false
}

func (j *journal) dropUnit(i int) {
	j.Units = slices.DeleteFunc(j.Units, func(u unitEntry) bool { return u.Index == i })
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
