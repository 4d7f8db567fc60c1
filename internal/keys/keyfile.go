package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// KDFParams are the argon2id parameters that turn the passphrase into the
// key that seals the key file.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// Bounds of the argon2id parameters a key file may carry.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 * 1024 * 1024 // 4 GiB
)

// check refuses parameters argon2 cannot use or that no medsec writes.
func (k KDFParams) check() error {
	switch {
	case k.Time < 1 || k.Time > maxKDFTime:
		return fmt.Errorf("argon2id time %d is outside 1..%d", k.Time, maxKDFTime)
	case k.Threads < 1:
		return errors.New("argon2id threads must be at least 1")
	case k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > maxKDFMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB is outside %d..%d KiB", k.MemoryKiB, 8*uint32(k.Threads), maxKDFMemoryKiB)
	}
	return nil
}

// DefaultKDF follows RFC 9106's second recommended option, scaled to two
// threads: about a quarter second on a small server.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// keyFileJSON is the on-disk form of the local KEK keyring.
type keyFileJSON struct {
	Format  string      `json:"format"`
	KDF     KDFParams   `json:"kdf"`
	Salt    []byte      `json:"salt"`
	Active  string      `json:"active"`
	Keys    []sealedKEK `json:"keys"`
	Summary string      `json:"check"` // SHA-256 of the fields above: tells damage from a wrong passphrase
}

type sealedKEK struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Sealed  []byte    `json:"sealed"` // nonce || AES-GCM(passphrase key, kek)
}

const keyFileFormat = "medsec-kek-v1"

// LocalProvider is the KEK keyring kept in a passphrase-protected file
// (mode 0600) in the data directory: the default provider.
type LocalProvider struct {
	mu     sync.RWMutex
	path   string
	file   keyFileJSON
	pass   cipher.AEAD // from the passphrase; seals KEKs in the file
	keks   map[string]cipher.AEAD
	active string
}

// CreateKeyFile writes a new key file with one fresh KEK at path. It
// refuses to overwrite an existing file.
func CreateKeyFile(path string, passphrase []byte, kdf KDFParams) (*LocalProvider, error) {
	if len(passphrase) < 8 {
		return nil, errors.New("create key file: the passphrase must be at least 8 characters")
	}
	if err := kdf.check(); err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("create key file %s: %w", path, fs.ErrExist)
	}
	p := &LocalProvider{path: path, keks: map[string]cipher.AEAD{}}
	p.file = keyFileJSON{Format: keyFileFormat, KDF: kdf, Salt: randBytes(16)}
	p.pass = passAEAD(passphrase, p.file.Salt, kdf)
	if _, err := p.addVersion(); err != nil {
		return nil, err
	}
	return p, p.save()
}

// OpenKeyFile opens the key file at path with passphrase.
func OpenKeyFile(path string, passphrase []byte) (*LocalProvider, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	p := &LocalProvider{path: path, keks: map[string]cipher.AEAD{}}
	if err := json.Unmarshal(raw, &p.file); err != nil || p.file.Format != keyFileFormat {
		return nil, fmt.Errorf("%w: %s is not a medsec key file or is damaged", ErrKeyFile, path)
	}
	if !hmacEqual(p.file.Summary, p.file.summary()) {
		return nil, fmt.Errorf("%w: %s is damaged (its checksum does not match)", ErrKeyFile, path)
	}
	// The checksum is not a secret: a file written by someone else can
	// carry any parameters, and argon2 panics on zero ones or takes all
	// the memory asked for.
	if err := p.file.KDF.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	p.pass = passAEAD(passphrase, p.file.Salt, p.file.KDF)
	for _, k := range p.file.Keys {
		kek, err := openSealed(p.pass, k.Sealed, []byte(k.ID))
		if err != nil {
			return nil, fmt.Errorf("%w %s", ErrWrongPassphrase, path)
		}
		p.keks[k.ID] = newGCM(kek)
	}
	p.active = p.file.Active
	if _, ok := p.keks[p.active]; !ok {
		return nil, fmt.Errorf("%w: %s names active key %q that it does not hold", ErrKeyFile, path, p.active)
	}
	return p, nil
}

func (f *keyFileJSON) summary() string {
	c := *f
	c.Summary = ""
	b, _ := json.Marshal(c)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func passAEAD(passphrase, salt []byte, k KDFParams) cipher.AEAD {
	return newGCM(argon2.IDKey(passphrase, salt, k.Time, k.MemoryKiB, k.Threads, 32))
}

// save replaces the file atomically: write a temporary file, fsync, rename.
func (p *LocalProvider) save() error {
	p.file.Summary = p.file.summary()
	b, err := json.MarshalIndent(p.file, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(p.path, b, 0o600)
}

// WriteFileAtomic writes data to path through a synced temporary file and a
// rename, so a crash leaves either the old or the new file, never half.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (p *LocalProvider) addVersion() (string, error) {
	kek := randBytes(32)
	id := "kek-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(randBytes(3))
	p.file.Keys = append(p.file.Keys, sealedKEK{ID: id, Created: time.Now().UTC(), Sealed: seal(p.pass, kek, []byte(id))})
	p.file.Active = id
	p.keks[id] = newGCM(kek)
	p.active = id
	return id, nil
}

// Wrap encrypts a data key under the active KEK.
func (p *LocalProvider) Wrap(_ context.Context, dataKey, aad []byte) (Wrapped, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return Wrapped{KeyID: p.active, Ciphertext: seal(p.keks[p.active], dataKey, aad)}, nil
}

// Unwrap decrypts a data key wrapped by any KEK version still held.
func (p *LocalProvider) Unwrap(_ context.Context, w Wrapped, aad []byte) ([]byte, error) {
	p.mu.RLock()
	kek, ok := p.keks[w.KeyID]
	p.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: key-encryption key %s is not in the key file (retired or from another installation)", ErrKeyFile, w.KeyID)
	}
	dk, err := openSealed(kek, w.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("unwrap data key: %w", ErrTampered)
	}
	return dk, nil
}

// ActiveKeyID names the KEK version new data keys are wrapped with.
func (p *LocalProvider) ActiveKeyID() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.active
}

// AddVersion makes a fresh KEK the active one and saves the file.
func (p *LocalProvider) AddVersion(context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, err := p.addVersion()
	if err != nil {
		return "", err
	}
	return id, p.save()
}

// Retire removes a KEK version that wraps nothing any more, and saves the
// file. Copies of data keys wrapped by it (in old backups) then stay sealed
// for good.
func (p *LocalProvider) Retire(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == p.active {
		return fmt.Errorf("retire %s: it is the active key-encryption key", id)
	}
	p.file.Keys = slices.DeleteFunc(p.file.Keys, func(k sealedKEK) bool { return k.ID == id })
	delete(p.keks, id)
	return p.save()
}

// Versions lists the KEK versions the file holds, oldest first.
func (p *LocalProvider) Versions() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ids := make([]string, 0, len(p.file.Keys))
	for _, k := range p.file.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("keys: AES key of wrong length") // only 32-byte keys are ever made here
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic("keys: GCM unavailable")
	}
	return gcm
}

// seal returns nonce || ciphertext.
func seal(a cipher.AEAD, plaintext, aad []byte) []byte {
	nonce := randBytes(a.NonceSize())
	return a.Seal(nonce, nonce, plaintext, aad)
}

func openSealed(a cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, ErrTampered
	}
	n := a.NonceSize()
	return a.Open(nil, sealed[:n], sealed[n:], aad)
}
