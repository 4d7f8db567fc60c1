package keys

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/store"
)

// Migrations create the data-key table.
var Migrations = []store.Migration{
	{Component: "keys", Version: 1, Name: "data keys", SQL: `CREATE TABLE data_keys (
		owner TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		kek_id TEXT NOT NULL,
		wrapped BLOB,
		created_at BIGINT NOT NULL,
		destroyed_at BIGINT,
		destroyed_by TEXT,
		destroy_basis TEXT);
		CREATE INDEX data_keys_kek ON data_keys (kek_id)`},
}

// Keyring hands out the data keys of patients and of the system, stored
// wrapped in the database.
type Keyring struct {
	db       *store.DB
	provider KeyProvider

	mu    sync.Mutex
	cache map[string]cachedKey // owner → unwrapped key; bounded
}

type cachedKey struct {
	wrappedSum [32]byte
	aead       cipher.AEAD
	raw        []byte
}

const cacheLimit = 50000

// NewKeyring returns a keyring over db whose keys are wrapped by provider.
func NewKeyring(db *store.DB, provider KeyProvider) *Keyring {
	return &Keyring{db: db, provider: provider, cache: map[string]cachedKey{}}
}

// Provider returns the KEK provider.
func (k *Keyring) Provider() KeyProvider { return k.provider }

// DestroyedError says when, by whom and on what basis a patient's data key
// was destroyed. It matches ErrDestroyed with errors.Is.
type DestroyedError struct {
	Patient string
	// Owner names the key's owner when it is not a patient's (CreateKey).
	Owner string
	At    time.Time
	By    string
	Basis string // e.g. "REQUEST erasure 2026-0012" or "POLICY kr-emr-10y"
}

func (e *DestroyedError) Error() string {
	whose := "patient " + e.Patient
	if e.Patient == "" {
		whose = e.Owner
	}
	return fmt.Sprintf("%s: data destroyed on %s by %s (carried out by %s); it cannot be read again",
		whose, e.At.UTC().Format("2006-01-02 15:04 UTC"), e.Basis, e.By)
}

// Is makes errors.Is(err, ErrDestroyed) true.
func (e *DestroyedError) Is(target error) bool { return target == ErrDestroyed }

func patientOwner(id string) string  { return "patient:" + id }
func systemOwner(name string) string { return "system:" + name }

func wrapAAD(owner string) []byte { return []byte("medsec.datakey.v1\x00" + owner) }

// CreatePatientKey makes and stores a new data key for a patient, in the
// caller's transaction (the patient row is written in the same one).
func (k *Keyring) CreatePatientKey(ctx context.Context, tx *store.Tx, patientID string) (*PatientKey, error) {
	aead, err := k.create(ctx, tx, patientOwner(patientID), "patient")
	if err != nil {
		return nil, fmt.Errorf("create data key for patient %s: %w", patientID, err)
	}
	return &PatientKey{patient: patientID, aead: aead}, nil
}

func (k *Keyring) create(ctx context.Context, q store.Querier, owner, kind string) (cipher.AEAD, error) {
	raw := randBytes(32)
	w, err := k.provider.Wrap(ctx, raw, wrapAAD(owner))
	if err != nil {
		return nil, err
	}
	_, err = q.Exec(ctx, `INSERT INTO data_keys (owner, kind, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?, ?)`,
		owner, kind, w.KeyID, w.Ciphertext, time.Now().UnixNano())
	if err != nil {
		return nil, err
	}
	return newGCM(raw), nil
}

// ForPatient returns the patient's data key. It reads the key's row each
// time, so a key destroyed by another process is never used from a cache;
// only the unwrapping is cached. A destroyed key gives a *DestroyedError.
func (k *Keyring) ForPatient(ctx context.Context, q store.Querier, patientID string) (*PatientKey, error) {
	aead, _, err := k.load(ctx, q, patientOwner(patientID))
	if err != nil {
		var de *DestroyedError
		if errors.As(err, &de) {
			de.Patient = patientID
		}
		return nil, err
	}
	return &PatientKey{patient: patientID, aead: aead}, nil
}

func (k *Keyring) load(ctx context.Context, q store.Querier, owner string) (cipher.AEAD, []byte, error) {
	var (
		kekID, by, basis string
		wrapped          []byte
		destroyedAt      *int64
	)
	err := q.QueryRow(ctx, `SELECT kek_id, wrapped, destroyed_at, COALESCE(destroyed_by, ''), COALESCE(destroy_basis, '') FROM data_keys WHERE owner = ?`, owner).
		Scan(&kekID, &wrapped, &destroyedAt, &by, &basis)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w for %s", ErrNoKey, owner)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read data key of %s: %w", owner, err)
	}
	if destroyedAt != nil {
		return nil, nil, &DestroyedError{At: time.Unix(0, *destroyedAt), By: by, Basis: basis}
	}
	sum := sha256.Sum256(wrapped)
	k.mu.Lock()
	c, ok := k.cache[owner]
	k.mu.Unlock()
	if ok && c.wrappedSum == sum {
		return c.aead, c.raw, nil
	}
	raw, err := k.provider.Unwrap(ctx, Wrapped{KeyID: kekID, Ciphertext: wrapped}, wrapAAD(owner))
	if err != nil {
		return nil, nil, fmt.Errorf("unwrap data key of %s: %w", owner, err)
	}
	c = cachedKey{wrappedSum: sum, aead: newGCM(raw), raw: raw}
	k.mu.Lock()
	if len(k.cache) >= cacheLimit {
		clear(k.cache)
	}
	k.cache[owner] = c
	k.mu.Unlock()
	return c.aead, raw, nil
}

// Cached returns the patient's data key from the cache, without reading
// the key's row. Only a caller that has just read, in the same request,
// that the patient is not destroyed may use it (the door does: destruction
// marks the patient in the transaction that destroys the key).
func (k *Keyring) Cached(patientID string) (*PatientKey, bool) {
	k.mu.Lock()
	c, ok := k.cache[patientOwner(patientID)]
	k.mu.Unlock()
	if !ok {
		return nil, false
	}
	return &PatientKey{patient: patientID, aead: c.aead}, true
}

// DestroyPatientKey crypto-shreds a patient: the wrapped key is overwritten
// and the row keeps only when, by whom and why. It runs in the caller's
// transaction, next to the audit event that records it.
func (k *Keyring) DestroyPatientKey(ctx context.Context, tx *store.Tx, patientID, by, basis string) error {
	if err := k.destroy(ctx, tx, patientOwner(patientID), by, basis); err != nil {
		var de *DestroyedError
		if errors.As(err, &de) {
			de.Patient = patientID
		}
		return fmt.Errorf("destroy data key of patient %s: %w", patientID, err)
	}
	return nil
}

// destroy overwrites the wrapped key of owner; a key already destroyed
// gives its *DestroyedError, a missing one ErrNoKey.
func (k *Keyring) destroy(ctx context.Context, tx *store.Tx, owner, by, basis string) error {
	res, err := tx.Exec(ctx, `UPDATE data_keys SET wrapped = NULL, destroyed_at = ?, destroyed_by = ?, destroy_basis = ? WHERE owner = ? AND destroyed_at IS NULL`,
		time.Now().UnixNano(), by, basis, owner)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, _, err := k.load(ctx, tx, owner)
		return err
	}
	k.mu.Lock()
	delete(k.cache, owner)
	k.mu.Unlock()
	return nil
}

// InBackups says whether the destroyed data key of patientID can still be
// opened from a backup made before its destruction: its wrapped form is in
// such backups, and the key-encryption key version that wrapped it is still
// held. Rotating the KEK (which retires old versions) ends that, once every
// old copy of the key file is destroyed too. A key that is not destroyed is
// ErrNoKey's business, not this one's: it returns false.
func (k *Keyring) InBackups(ctx context.Context, patientID string) (bool, error) {
	var kek string
	err := k.db.QueryRow(ctx, `SELECT kek_id FROM data_keys WHERE owner = ? AND destroyed_at IS NOT NULL`, patientOwner(patientID)).Scan(&kek)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("key of patient %s: %w", patientID, err)
	}
	r, ok := k.provider.(Rotator)
	if !ok {
		return true, nil // the provider does not say which versions it holds
	}
	return slices.Contains(r.Versions(), kek), nil
}

// ExposedInBackups counts the patients whose data key was destroyed
// before the given time and can still be opened from a backup made before
// its destruction, because the key-encryption key version that wrapped it
// is still held. A provider that does not list its versions counts every
// destroyed key.
func (k *Keyring) ExposedInBackups(ctx context.Context, before time.Time) (int, error) {
	rows, err := k.db.Query(ctx, `SELECT kek_id, COUNT(*) FROM data_keys WHERE kind = 'patient' AND destroyed_at IS NOT NULL AND destroyed_at < ? GROUP BY kek_id`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("count destroyed keys: %w", err)
	}
	defer rows.Close()
	r, lists := k.provider.(Rotator)
	n := 0
	for rows.Next() {
		var kek string
		var c int
		if err := rows.Scan(&kek, &c); err != nil {
			return 0, err
		}
		if !lists || slices.Contains(r.Versions(), kek) {
			n += c
		}
	}
	return n, rows.Err()
}

// SystemKey returns the named 32-byte system secret (audit MAC key,
// pseudonym key, blind-index key …), creating it on first use.
func (k *Keyring) SystemKey(ctx context.Context, name string) ([]byte, error) {
	owner := systemOwner(name)
	_, raw, err := k.load(ctx, k.db, owner)
	if errors.Is(err, ErrNoKey) {
		err = k.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			_, cerr := k.create(ctx, tx, owner, "system")
			return cerr
		})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("create system key %s: %w", name, err)
		}
		_, raw, err = k.load(ctx, k.db, owner)
	}
	if err != nil {
		return nil, fmt.Errorf("system key %s: %w", name, err)
	}
	return raw, nil
}

// PatientKey seals and opens one patient's fields.
type PatientKey struct {
	patient string
	aead    cipher.AEAD
}

// Field names where a sealed value lives; it becomes the associated data,
// so a ciphertext moved to another row, field or patient fails to open.
type Field struct {
	Table, Record, Name string
}

const sealVersion = 1

// Seal encrypts plaintext for the field. The result is
// version || nonce || AES-256-GCM ciphertext and tag.
func (pk *PatientKey) Seal(f Field, plaintext []byte) []byte {
	return sealField(pk.aead, fieldAAD(f, pk.patient), plaintext)
}

// Open decrypts a sealed field; any change, or a ciphertext from another
// field, row or patient, gives ErrTampered.
func (pk *PatientKey) Open(f Field, sealed []byte) ([]byte, error) {
	return openField(pk.aead, f, fieldAAD(f, pk.patient), sealed)
}

// Patient is the id of the key's patient.
func (pk *PatientKey) Patient() string { return pk.patient }

// sealField returns version || nonce || AES-256-GCM ciphertext and tag.
func sealField(aead cipher.AEAD, aad, plaintext []byte) []byte {
	nonce := randBytes(aead.NonceSize())
	out := make([]byte, 1, 1+len(nonce)+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad)
}

func openField(aead cipher.AEAD, f Field, aad, sealed []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("open %s.%s of %s: %w", f.Table, f.Name, f.Record, ErrTampered)
	}
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, fmt.Errorf("open %s.%s of %s: %w", f.Table, f.Name, f.Record, ErrTampered)
	}
	return pt, nil
}

// fieldAAD binds a sealed value to its table, row, field and the key's
// owner (for a patient, the patient id alone, as it always was).
func fieldAAD(f Field, owner string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, "medsec.seal.v1"...)
	for _, s := range []string{f.Table, f.Record, f.Name, owner} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}
