package dicomdeid

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

func TestDir(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	written, err := dicomtest.WriteDir(in, dicomtest.Options{Seed: 31, Patients: 3, SeriesPerStudy: 2, InstancesPerSeries: 5})
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]error{
		"notes.txt":                         ErrNotDICOM,
		filepath.Join("P000", "broken.dcm"): ErrMalformed,
	}
	os.WriteFile(filepath.Join(in, "notes.txt"), []byte("not an image"), 0o644)
	os.WriteFile(filepath.Join(in, "P000", "broken.dcm"), rawFile(explicitTS, explicitHeader(0x0010, 0x0010, "PN", 0x4000)), 0o644)
	if err := os.Symlink(filepath.Join(in, "P000"), filepath.Join(in, "loop")); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var calls []int
	sum, err := newDeid(t, Options{}).Dir(context.Background(), in, out, func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, done)
		if total != len(written)+len(bad) {
			t.Errorf("progress total %d, want %d", total, len(written)+len(bad))
		}
	})
	if err != nil {
		t.Fatalf("Dir: %v", err)
	}
	want := Summary{Files: len(written) + len(bad), Written: len(written), Failed: len(bad), Skipped: 1}
	if sum.Files != want.Files || sum.Written != want.Written || sum.Failed != want.Failed || sum.Skipped != want.Skipped {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	for _, f := range sum.Failures {
		if !errors.Is(f.Err, bad[f.Path]) {
			t.Errorf("failure %s: got %v, want %v", f.Path, f.Err, bad[f.Path])
		}
	}
	if len(calls) != want.Files || calls[len(calls)-1] != want.Files {
		t.Errorf("progress called %d times ending at %v, want %d", len(calls), calls[len(calls)-1:], want.Files)
	}
	checkOutputTree(t, out, written)
}

// checkOutputTree: every input DICOM has a valid output at the same path,
// and nothing else is there (no temporary files, no failed outputs).
func checkOutputTree(t *testing.T, out string, written map[string]dicomtest.Instance) {
	t.Helper()
	var got []string
	filepath.WalkDir(out, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(out, path)
			got = append(got, rel)
		}
		return err
	})
	if len(got) != len(written) {
		t.Errorf("output holds %d files, want %d: %v", len(got), len(written), got)
	}
	for _, rel := range got {
		if _, ok := written[rel]; !ok || strings.Contains(rel, ".medsec-deid-") {
			t.Errorf("unexpected output file %s", rel)
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		ds := parseOutput(t, data)
		if strings.Contains(allText(ds), written[rel].Patient.ID) {
			t.Errorf("%s still holds the patient ID", rel)
		}
	}
}

func TestDirRefusesOutputInsideInput(t *testing.T) {
	in := t.TempDir()
	d := newDeid(t, Options{})
	for _, out := range []string{in, filepath.Join(in, "deid")} {
		if _, err := d.Dir(context.Background(), in, out, nil); !errors.Is(err, ErrOutputInInput) {
			t.Errorf("Dir(%s, %s): got %v, want ErrOutputInInput", in, out, err)
		}
	}
}

func TestDirCancelled(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	if _, err := dicomtest.WriteDir(in, dicomtest.Options{Seed: 32, Patients: 2, InstancesPerSeries: 10}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sum, err := newDeid(t, Options{}).Dir(ctx, in, out, func(done, total int) {
		if done == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if sum.Written >= sum.Files {
		t.Errorf("wrote all %d files after cancel", sum.Written)
	}
}

func TestDirMissingInput(t *testing.T) {
	_, err := newDeid(t, Options{}).Dir(context.Background(), filepath.Join(t.TempDir(), "absent"), t.TempDir(), nil)
	if err == nil {
		t.Error("Dir on a missing directory: got no error")
	}
}
