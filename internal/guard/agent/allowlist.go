package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Allowlist holds the SHA-256 digests of the executables that may run.
type Allowlist struct {
	names map[string]string // hex digest -> name for people
}

// NewAllowlist builds a list from configured entries.
func NewAllowlist(entries []AllowEntry) (*Allowlist, error) {
	a := &Allowlist{names: make(map[string]string, len(entries))}
	for _, e := range entries {
		d := strings.ToLower(strings.TrimSpace(e.SHA256))
		if !isDigest(d) {
			return nil, fmt.Errorf("allowlist entry %q: %q is not a hex SHA-256 digest", e.Name, e.SHA256)
		}
		a.names[d] = e.Name
	}
	return a, nil
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Allowed reports whether digest may run, and the name it was allowed as.
func (a *Allowlist) Allowed(digest string) (string, bool) {
	name, ok := a.names[digest]
	return name, ok
}

// Len is the number of digests.
func (a *Allowlist) Len() int { return len(a.names) }

// AddPath allows a file as it is now, or, for a directory, every
// executable file beneath it (symbolic links are not followed).
func (a *Allowlist) AddPath(ctx context.Context, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("allow %s: %w", path, err)
	}
	if !st.IsDir() {
		return a.addFile(path)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("allow %s: %w", p, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			return nil
		}
		return a.addFile(p)
	})
}

func (a *Allowlist) addFile(path string) error {
	digest, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("allow %s: %w", path, err)
	}
	a.names[digest] = path
	return nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(f)
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
