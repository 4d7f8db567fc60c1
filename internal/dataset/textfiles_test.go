package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/deid/text"
)

type cancelOnAdd struct {
	NoProgress
	cancel func()
}

func (c cancelOnAdd) Add(int64) { c.cancel() }

// TestRedactFilesResumes: an interrupted batch keeps what it finished; the
// next run redoes only the files not done or changed since, and leaves no
// journal once every file is done.
func TestRedactFilesResumes(t *testing.T) {
	in, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	notes := map[string]string{
		"a.txt": "환자 김민수, 연락처 010-1234-5678, 2023-03-14 내원.\n",
		"b.txt": "Patient name: John Smith, SSN 123-45-6789, seen 03/14/2023.\n",
		"c.txt": "Dr. Okafor reviewed; email jane.doe@example.com.\n",
	}
	var inputs []string
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(notes[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p)
	}
	red := text.NewRedactor(text.Options{})
	fp := TextFingerprint("tags", 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := RedactFiles(ctx, TextJob{Inputs: inputs, OutDir: out, Red: red, Fingerprint: fp, Progress: cancelOnAdd{cancel: cancel}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted batch: %v", err)
	}
	if !exists(filepath.Join(out, "a.txt")) || exists(filepath.Join(out, "b.txt")) || !exists(filepath.Join(out, TextJournalFile)) {
		t.Fatal("after the interruption: want a.txt and the journal, not b.txt")
	}
	if _, err := RedactFiles(context.Background(), TextJob{Inputs: inputs, OutDir: out, Red: red, Fingerprint: TextFingerprint("surrogates", 0, []byte("k"))}); err == nil {
		t.Error("resumed with another redaction")
	}
	res, err := RedactFiles(context.Background(), TextJob{Inputs: inputs, OutDir: out, Red: red, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Resumed != 1 || exists(filepath.Join(out, TextJournalFile)) {
		t.Errorf("resumed run %+v (want 3 files, 1 resumed), journal left: %v", res, exists(filepath.Join(out, TextJournalFile)))
	}
	for name := range notes {
		b, _ := os.ReadFile(filepath.Join(out, name))
		for _, phi := range []string{"김민수", "010-1234-5678", "John Smith", "123-45-6789", "jane.doe", "Okafor", "2023"} {
			if strings.Contains(string(b), phi) {
				t.Errorf("%s still holds %q: %s", name, phi, b)
			}
		}
	}
	dup := append(inputs, filepath.Join(t.TempDir(), "a.txt"))
	os.WriteFile(dup[3], []byte("x"), 0o600)
	if _, err := RedactFiles(context.Background(), TextJob{Inputs: dup, OutDir: t.TempDir(), Red: red, Fingerprint: fp}); err == nil || !strings.Contains(err.Error(), "both be written") {
		t.Errorf("two inputs of one name: %v", err)
	}
}
