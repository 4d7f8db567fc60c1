package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func cmpIgnore(fields ...string) cmp.Option { return cmpopts.IgnoreFields(Alert{}, fields...) }

func TestParseConfig(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	good := "mode: enforce\ninterval: 5s\nallow:\n  - sha256: " + strings.ToUpper(digest) + "\n    name: viewer\nallow_paths: [/opt/pacs/bin]\nprotect: [/opt/pacs]\n"
	cfg, err := ParseConfig(strings.NewReader(good))
	must(t, err)
	want := Config{Mode: ModeEnforce, Interval: 5 * time.Second, IntegrityInterval: DefaultIntegrityInterval,
		Allow: []AllowEntry{{SHA256: strings.ToUpper(digest), Name: "viewer"}}, AllowPaths: []string{"/opt/pacs/bin"}, Protect: []string{"/opt/pacs"}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	for name, in := range map[string]string{
		"unknown key":    "mode: alert\nprotekt: [/opt]\n",
		"bad mode":       "mode: block\n",
		"bad digest":     "allow:\n  - sha256: abc\n",
		"negative":       "interval: -1s\n",
		"not a duration": "interval: soon\n",
	} {
		if _, err := ParseConfig(strings.NewReader(in)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	if cfg, err := ParseConfig(strings.NewReader("")); err != nil || cfg.Mode != ModeAlert || cfg.Interval != DefaultInterval {
		t.Errorf("empty config = %+v, %v; want alert mode with defaults", cfg, err)
	}
}

func TestIntegrity(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) { must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)) }
	write("viewer.cfg", "port=104")
	write("lut.dat", "abc")
	write("gone.txt", "x")
	write("owned.txt", "x")
	must(t, os.Symlink("viewer.cfg", filepath.Join(dir, "current")))
	ctx := context.Background()
	before, errs := TakeBaseline(ctx, []string{dir})
	if len(errs) != 0 {
		t.Fatal(errs)
	}

	write("viewer.cfg", "port=4444")
	must(t, os.Chmod(filepath.Join(dir, "lut.dat"), 0o666))
	must(t, os.Remove(filepath.Join(dir, "gone.txt")))
	write("dropper.exe", "MZ")
	must(t, os.Remove(filepath.Join(dir, "current")))
	must(t, os.Symlink("dropper.exe", filepath.Join(dir, "current")))
	wantOwner := os.Geteuid() == 0
	if wantOwner {
		must(t, os.Chown(filepath.Join(dir, "owned.txt"), 12345, 12345))
	}
	after, _ := TakeBaseline(ctx, []string{dir})

	type change struct {
		Name string
		Kind Kind
	}
	var got []change
	var alerts []string
	for _, c := range Compare(before, after) {
		got = append(got, change{strings.TrimPrefix(c.Path, dir+"/"), c.Kind})
		alerts = append(alerts, c.Alert(time.Now()).Reason)
	}
	// The directory itself is compared by type, owner and mode, not by
	// size, which changes with its entries.
	want := []change{
		{"current", FileModified},
		{"dropper.exe", FileAdded},
		{"gone.txt", FileRemoved},
		{"lut.dat", FileModeChanged},
	}
	if wantOwner {
		want = append(want, change{"owned.txt", FileOwnerChanged})
	}
	want = append(want, change{"viewer.cfg", FileModified})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s\nreasons: %q", diff, alerts)
	}
	if c := Compare(after, after); len(c) != 0 {
		t.Errorf("no change: got %v", c)
	}
}

func TestBaselineFile(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a"), []byte("1"), 0o644))
	b, _ := TakeBaseline(context.Background(), []string{dir})
	path := filepath.Join(t.TempDir(), "baseline.json")
	must(t, SaveBaseline(path, b))
	back, err := LoadBaseline(path)
	must(t, err)
	if diff := cmp.Diff(b, back); diff != "" {
		t.Errorf("baseline after save/load (-want +got):\n%s", diff)
	}
}
