// Package keys holds medsec's key hierarchy and sealing: a key-encryption key
// (KEK) behind a KeyProvider, a data key per patient wrapped by it, and
// AES-256-GCM sealing of every identifying field and clinical payload with
// the record's identity as associated data. Destroying a patient's data key
// is crypto-shredding: every copy of the patient's sealed data, backups
// included once the KEK version that wrapped it is retired, becomes noise.
//
// It serves the "information encryption" requirement of the paper's
// locations 3, 4 and 6 (healthcare data server, HIS, main server) and the
// destruction/disposal stage of the life cycle.
package keys

import (
	"context"
	"errors"
)

// KeyProvider wraps and unwraps data keys under a key-encryption key that
// never leaves the provider. The local key file is one provider; HashiCorp
// Vault's transit engine or a cloud KMS fit the same two calls (their
// "context"/"additional authenticated data" takes aad).
type KeyProvider interface {
	// Wrap encrypts a data key under the provider's active KEK.
	Wrap(ctx context.Context, dataKey, aad []byte) (Wrapped, error)
	// Unwrap decrypts a data key wrapped by any KEK version the provider
	// still holds.
	Unwrap(ctx context.Context, w Wrapped, aad []byte) ([]byte, error)
	// ActiveKeyID names the KEK version Wrap uses now.
	ActiveKeyID() string
}

// Rotator is a KeyProvider whose KEK can be replaced. Rotation adds a new
// active version; the old one is retired once nothing is wrapped by it.
type Rotator interface {
	KeyProvider
	AddVersion(ctx context.Context) (id string, err error)
	Retire(ctx context.Context, id string) error
	Versions() []string
}

// Wrapped is a data key encrypted under the KEK version KeyID.
type Wrapped struct {
	KeyID      string
	Ciphertext []byte
}

// Sentinel errors.
var (
	// ErrDestroyed means the patient's data key was destroyed
	// (crypto-shredded). The data can never be read again; the error's
	// *DestroyedError says when, by whom and on what basis.
	ErrDestroyed = errors.New("data destroyed")
	// ErrWrongPassphrase means the key file did not open with the
	// passphrase given. Ask for the right one (MEDSEC_PASSPHRASE).
	ErrWrongPassphrase = errors.New("wrong passphrase for the key file")
	// ErrKeyFile means the key file is missing, unreadable or damaged.
	// Restore it from the offline backup made at init.
	ErrKeyFile = errors.New("key file unusable")
	// ErrTampered means sealed data did not open under its key and
	// identity: it was changed, or copied from another row or patient.
	ErrTampered = errors.New("sealed data failed authentication")
	// ErrNoKey means no data key exists for the patient (never registered).
	ErrNoKey = errors.New("no data key")
)
