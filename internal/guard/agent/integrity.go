package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/medsec/medsec/internal/guard"
)

// FileState is what the integrity check remembers of one file.
type FileState struct {
	SHA256 string      `json:"sha256,omitempty"` // regular files
	Link   string      `json:"link,omitempty"`   // symbolic links: the target
	Mode   fs.FileMode `json:"mode"`
	UID    int         `json:"uid"`
	GID    int         `json:"gid"`
	Size   int64       `json:"size"`
}

// Baseline maps each path under the protected directories to its state.
type Baseline map[string]FileState

// TakeBaseline records every file and directory under dirs. Symbolic
// links are recorded, not followed. Files that cannot be read are
// recorded without a digest and reported in errs, so a protected file
// made unreadable still shows up as changed.
func TakeBaseline(ctx context.Context, dirs []string) (b Baseline, errs []error) {
	b = Baseline{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			st, err := fileState(p)
			if err != nil {
				errs = append(errs, err)
			}
			b[p] = st
			return nil
		})
		if err != nil {
			return b, append(errs, err)
		}
	}
	return b, errs
}

func fileState(p string) (FileState, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return FileState{}, err
	}
	st := FileState{Mode: info.Mode(), Size: info.Size()}
	st.UID, st.GID = owner(info)
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		st.Link, err = os.Readlink(p)
	case info.Mode().IsRegular():
		st.SHA256, err = hashFile(p)
	}
	if err != nil {
		return st, fmt.Errorf("record %s: %w", p, err)
	}
	return st, nil
}

// Change is one difference between two baselines.
type Change struct {
	Path   string     `json:"path"`
	Kind   Kind       `json:"kind"`
	Before *FileState `json:"before,omitempty"`
	After  *FileState `json:"after,omitempty"`
}

// Compare lists what changed from before to after, in path order; a file
// whose content and permissions both changed yields two changes.
func Compare(before, after Baseline) []Change {
	var out []Change
	for p, b := range before {
		a, ok := after[p]
		if !ok {
			out = append(out, Change{Path: p, Kind: FileRemoved, Before: &b})
			continue
		}
		out = append(out, differences(p, b, a)...)
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			out = append(out, Change{Path: p, Kind: FileAdded, After: &a})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

func differences(p string, b, a FileState) []Change {
	var out []Change
	add := func(k Kind) { out = append(out, Change{Path: p, Kind: k, Before: &b, After: &a}) }
	if b.SHA256 != a.SHA256 || b.Link != a.Link || b.Mode.Type() != a.Mode.Type() || (!b.Mode.IsDir() && b.Size != a.Size) {
		add(FileModified)
	}
	if b.UID != a.UID || b.GID != a.GID {
		add(FileOwnerChanged)
	}
	if b.Mode.Perm() != a.Mode.Perm() || b.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != a.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) {
		add(FileModeChanged)
	}
	return out
}

// Alert turns a change into an alert with a reason.
func (c Change) Alert(at time.Time) Alert {
	a := Alert{Time: at, Kind: c.Kind, Severity: guard.High, Path: c.Path}
	switch c.Kind {
	case FileAdded:
		a.SHA256, a.Reason = c.After.SHA256, "new file in a protected directory"
	case FileRemoved:
		a.Reason = "file removed from a protected directory"
	case FileModified:
		a.SHA256, a.Reason = c.After.SHA256, fmt.Sprintf("content changed (SHA-256 was %s)", short(c.Before.SHA256))
	case FileOwnerChanged:
		a.Reason = fmt.Sprintf("owner changed from %d:%d to %d:%d", c.Before.UID, c.Before.GID, c.After.UID, c.After.GID)
	case FileModeChanged:
		a.Reason = fmt.Sprintf("permissions changed from %s to %s", c.Before.Mode, c.After.Mode)
	}
	return a
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12] + "…"
	}
	if d == "" {
		return "none"
	}
	return d
}

// SaveBaseline writes b as JSON, replacing path atomically.
func SaveBaseline(path string, b Baseline) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("save baseline: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save baseline: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save baseline: %w", err)
	}
	return nil
}

// LoadBaseline reads a baseline SaveBaseline wrote.
func LoadBaseline(path string) (Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load baseline: %w", err)
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("load baseline %s: %w", path, err)
	}
	return b, nil
}
