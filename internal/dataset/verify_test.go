package dataset_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
)

// TestTamperingDetected: a change to any single byte of the manifest, its
// signature or a data file, a removed, truncated or added file, and a
// signature by another key are each found and named.
func TestTamperingDetected(t *testing.T) {
	f := newFixture(t, lifecycletest.SQLite, 60)
	c := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV)
	key := f.svc.Signer().VerifierKey()
	if _, err := dataset.VerifyDir(c.Dir, key); err != nil {
		t.Fatalf("untouched dataset: %v", err)
	}
	for _, name := range []string{dataset.ManifestFile, dataset.SignatureFile, "data.csv"} {
		t.Run("every byte of "+name, func(t *testing.T) {
			flipEveryByte(t, c.Dir, name, key)
		})
	}
	data := filepath.Join(c.Dir, "data.csv")
	orig, _ := os.ReadFile(data)
	tests := []struct {
		name   string
		change func() error
		undo   func()
		want   string
	}{
		{"removed", func() error { return os.Remove(data) }, func() { os.WriteFile(data, orig, 0o600) }, "data.csv is missing"},
		{"truncated", func() error { return os.WriteFile(data, orig[:len(orig)/2], 0o600) }, func() { os.WriteFile(data, orig, 0o600) }, "data.csv is"},
		{"appended", func() error { return os.WriteFile(data, append(orig, "x\n"...), 0o600) }, func() { os.WriteFile(data, orig, 0o600) }, "truncated or changed"},
		{"added", func() error { return os.WriteFile(filepath.Join(c.Dir, "extra.csv"), []byte("a\n"), 0o600) },
			func() { os.Remove(filepath.Join(c.Dir, "extra.csv")) }, "extra.csv is not in the manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.change(); err != nil {
				t.Fatal(err)
			}
			defer tt.undo()
			_, err := dataset.VerifyDir(c.Dir, key)
			if !errors.Is(err, dataset.ErrTampered) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrTampered naming %q", err, tt.want)
			}
		})
	}
	t.Run("another key", func(t *testing.T) {
		other := newFixture(t, lifecycletest.SQLite, 0)
		_, err := dataset.VerifyDir(c.Dir, other.svc.Signer().VerifierKey())
		if !errors.Is(err, dataset.ErrTampered) || !strings.Contains(err.Error(), "signature does not verify") {
			t.Errorf("verified with another hospital's key: %v", err)
		}
		if _, err := other.svc.Verify(context.Background(), c.Dir); !errors.Is(err, dataset.ErrTampered) {
			t.Errorf("another hospital's register accepted the dataset: %v", err)
		}
	})
	if _, err := f.svc.Verify(context.Background(), c.Dir); err != nil {
		t.Errorf("after every change was undone: %v", err)
	}
}

// flipEveryByte changes each byte of one file in turn (in memory) and
// checks that the verification fails and names the file (a manifest or
// signature change shows as a signature that no longer verifies).
func flipEveryByte(t *testing.T, dir, name, key string) {
	t.Helper()
	fsys := fstest.MapFS{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fsys[e.Name()] = &fstest.MapFile{Data: b}
	}
	want := name
	if name == dataset.ManifestFile || name == dataset.SignatureFile {
		want = "signature"
	}
	b := fsys[name].Data
	for i := range b {
		orig := b[i]
		b[i] ^= 0x20
		_, err := dataset.VerifyFS(fsys, dir, key)
		if !errors.Is(err, dataset.ErrTampered) || !strings.Contains(err.Error(), want) {
			t.Fatalf("byte %d of %s changed: got %v, want ErrTampered naming %q", i, name, err, want)
		}
		b[i] = orig
	}
	if _, err := dataset.VerifyFS(fsys, dir, key); err != nil {
		t.Fatalf("restored %s: %v", name, err)
	}
}
