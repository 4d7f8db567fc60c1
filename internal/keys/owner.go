package keys

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"

	"github.com/medsec/medsec/internal/store"
)

// Data keys of owners that are not patients: a quarantined file that may
// belong to no known patient, an import's typed origin, a workstation's
// reports. Each owner's data gets a key of its own, stored wrapped by the
// KEK in the same table as the patients' keys (so rotation re-wraps it and
// backups hold only the wrapped form), and destroying that key
// crypto-shreds every copy of the owner's data, as for a patient.

// ErrOwner means an owner name the generic key API does not take: it must
// be "KIND:ID" and not a patient's or a system secret's (those have their
// own calls, so a slip here can never shred a patient or the audit key).
var ErrOwner = errors.New("invalid data-key owner")

// DataKey seals and opens the fields of one owner.
type DataKey struct {
	owner string
	aead  cipher.AEAD
}

// checkOwner accepts "kind:id" names of at most 200 printable ASCII bytes.
func checkOwner(owner string) error {
	kind, id, ok := strings.Cut(owner, ":")
	switch {
	case !ok || kind == "" || id == "" || len(owner) > 200:
		return fmt.Errorf("%w %q: want KIND:ID of at most 200 bytes", ErrOwner, owner)
	case kind == "patient" || kind == "system":
		return fmt.Errorf("%w %q: %s keys have their own calls", ErrOwner, owner, kind)
	case strings.ContainsFunc(owner, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("%w %q: printable ASCII without spaces only", ErrOwner, owner)
	}
	return nil
}

// CreateKey makes and stores a new data key for owner ("KIND:ID", e.g.
// "quarantine:q_…"), in the caller's transaction, so the key exists
// exactly when the rows it seals do. kind is recorded with the key. A
// second key for the same owner fails with store.ErrConflict.
func (k *Keyring) CreateKey(ctx context.Context, tx *store.Tx, owner, kind string) (*DataKey, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	aead, err := k.create(ctx, tx, owner, kind)
	if err != nil {
		return nil, fmt.Errorf("create data key of %s: %w", owner, err)
	}
	return &DataKey{owner: owner, aead: aead}, nil
}

// ForOwner returns owner's data key, read from its row each time (only the
// unwrapping is cached), so a key destroyed by another process is never
// used. ErrNoKey when there is none; a destroyed key gives a
// *DestroyedError naming the owner.
func (k *Keyring) ForOwner(ctx context.Context, q store.Querier, owner string) (*DataKey, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	aead, _, err := k.load(ctx, q, owner)
	if err != nil {
		var de *DestroyedError
		if errors.As(err, &de) {
			de.Owner = owner
		}
		return nil, err
	}
	return &DataKey{owner: owner, aead: aead}, nil
}

// DestroyKey crypto-shreds owner's data: the wrapped key is overwritten
// and the row keeps only when, by whom and why. It runs in the caller's
// transaction, next to the audit event that records it. A key destroyed
// before gives its *DestroyedError; a missing one ErrNoKey.
func (k *Keyring) DestroyKey(ctx context.Context, tx *store.Tx, owner, by, basis string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	if err := k.destroy(ctx, tx, owner, by, basis); err != nil {
		var de *DestroyedError
		if errors.As(err, &de) {
			de.Owner = owner
		}
		return fmt.Errorf("destroy data key of %s: %w", owner, err)
	}
	return nil
}

// Owner names the key's owner.
func (dk *DataKey) Owner() string { return dk.owner }

// Seal encrypts plaintext for the field, bound to the field and the owner:
// version || nonce || AES-256-GCM ciphertext and tag.
func (dk *DataKey) Seal(f Field, plaintext []byte) []byte {
	return sealField(dk.aead, fieldAAD(f, dk.owner), plaintext)
}

// Open decrypts a sealed field; any change, or a ciphertext from another
// field, row or owner, gives ErrTampered.
func (dk *DataKey) Open(f Field, sealed []byte) ([]byte, error) {
	return openField(dk.aead, f, fieldAAD(f, dk.owner), sealed)
}
