package records

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOneDoor fails when code outside this package names a patient-data
// table (phi_*) or reaches into the door's internals: every read and write
// of patient data must pass authenticate → decide → audit → unseal here.
func TestOneDoor(t *testing.T) {
	root := filepath.Join("..", "..")
	self, _ := filepath.Abs(".")
	table := regexp.MustCompile(`\bphi_[a-z_]+\b`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if abs, _ := filepath.Abs(path); abs == self || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := table.Find(src); m != nil {
			t.Errorf("%s names the patient-data table %s: only internal/records (the one door) may", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
