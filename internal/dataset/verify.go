package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// VerifyError names every problem a verification found.
type VerifyError struct {
	Dir      string
	Problems []string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("dataset %s does not verify: %s", e.Dir, strings.Join(e.Problems, "; "))
}

// Unwrap makes errors.Is(err, ErrTampered) true.
func (e *VerifyError) Unwrap() error { return ErrTampered }

// Verification is what a dataset that verified holds.
type Verification struct {
	Manifest *Manifest
	// Key is the verifier key that checked the signature.
	Key   string
	Files int
	Bytes int64
}

// VerifyDir checks a dataset directory against the trusted verifier key:
// the manifest's signature, then every listed file's size and hash, and
// that no file was added. It names every problem it finds in a
// *VerifyError (ErrTampered); a changed manifest shows as a signature
// that does not verify.
func VerifyDir(dir, vkey string) (*Verification, error) {
	return VerifyFS(os.DirFS(dir), dir, vkey)
}

// VerifyFS is VerifyDir on the dataset's files in fsys (dir names it in
// messages).
func VerifyFS(fsys fs.FS, dir, vkey string) (*Verification, error) {
	v, err := NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	mraw, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		add("%s cannot be read: %v", ManifestFile, errors.Unwrap(err))
	}
	sig := checkSignature(fsys, v, strings.TrimSpace(vkey), mraw, add)
	m, err := ParseManifest(mraw)
	if mraw != nil && err != nil {
		add("%v", err)
	}
	out := &Verification{Manifest: m, Key: v.Name()}
	if m != nil {
		out.Files, out.Bytes = checkDataFiles(fsys, m.Files, add)
	}
	if len(problems) > 0 || sig == nil || m == nil {
		return nil, &VerifyError{Dir: dir, Problems: problems}
	}
	return out, nil
}

func checkSignature(fsys fs.FS, v note.Verifier, vkey string, manifest []byte, add func(string, ...any)) *Signature {
	raw, err := fs.ReadFile(fsys, SignatureFile)
	if err != nil {
		add("%s cannot be read: %v", SignatureFile, errors.Unwrap(err))
		return nil
	}
	sig, err := ParseSignature(raw)
	if err != nil {
		add("%v", err)
		return nil
	}
	if manifest == nil {
		return nil
	}
	if sig.Key != vkey {
		add("%s names the key %q, not the trusted %q: the signature does not verify with the trusted key", SignatureFile, keyName(sig.Key), v.Name())
		return nil
	}
	if !sig.Verify(v, manifest) {
		add("the signature does not verify: %s or %s was changed after signing, or another key signed it", ManifestFile, SignatureFile)
		return nil
	}
	return sig
}

func keyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

// checkDataFiles hashes every listed file and looks for unlisted ones.
func checkDataFiles(fsys fs.FS, files []FileEntry, add func(string, ...any)) (int, int64) {
	var total int64
	listed := []string{ManifestFile, SignatureFile}
	for _, f := range files {
		listed = append(listed, f.Name)
		sum, n, err := hashFile(fsys, f.Name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			add("%s is missing", f.Name)
		case err != nil:
			add("%s cannot be read: %v", f.Name, err)
		case n != f.Bytes:
			add("%s is %d bytes, the manifest says %d (truncated or changed)", f.Name, n, f.Bytes)
		case sum != f.SHA256:
			add("%s was changed (its SHA-256 is %s…, the manifest says %s…)", f.Name, sum[:12], f.SHA256[:12])
		default:
			total += n
		}
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		add("the directory cannot be listed: %v", err)
		return len(files), total
	}
	for _, e := range entries {
		if !slices.Contains(listed, e.Name()) {
			add("%s is not in the manifest (added after signing)", e.Name())
		}
	}
	return len(files), total
}

// Verify checks a dataset directory with this hospital's key and against
// its register: the dataset must be registered as complete with this very
// manifest.
func (s *Service) Verify(ctx context.Context, dir string) (*Verification, error) {
	v, err := VerifyDir(dir, s.signer.VerifierKey())
	if err != nil {
		return nil, err
	}
	info, err := s.Get(ctx, v.Manifest.Dataset.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, &VerifyError{Dir: dir, Problems: []string{fmt.Sprintf("dataset %s is not in this hospital's register", v.Manifest.Dataset.ID)}}
	}
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	if info.State != StateComplete || hex.EncodeToString(sum[:]) != info.ManifestSHA256 {
		return nil, &VerifyError{Dir: dir, Problems: []string{fmt.Sprintf("the register holds dataset %s as %s with another manifest", info.ID, info.State)}}
	}
	return v, nil
}
