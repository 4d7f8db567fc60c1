package lifecycle

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/keys"
)

// signerSecret names the system secret the hospital's signing key is
// derived from. It is wrapped by the KEK like every other data key, so no
// private key is ever stored in plaintext.
const signerSecret = "hospital-signer"

// Signer is the hospital's document-signing key (Ed25519): it signs the
// provision packages sent to recipients and the destruction certificates.
// Its verifier key (a note verifier key, "<name>+<hash>+<key>") is what
// recipients and auditors hold. It implements note.Signer.
type Signer struct {
	priv ed25519.PrivateKey
	vkey string
	ver  note.Verifier
}

// HospitalSigner returns the signing key of the installation named
// hospitalID (its config hospital.id).
func HospitalSigner(ctx context.Context, kr *keys.Keyring, hospitalID string) (*Signer, error) {
	seed, err := kr.SystemKey(ctx, signerSecret)
	if err != nil {
		return nil, fmt.Errorf("hospital signing key: %w", err)
	}
	return NewSigner("medsec-hospital-"+hospitalID, seed)
}

// NewSigner makes a signer named name from a 32-byte seed.
func NewSigner(name string, seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key: seed must be %d bytes", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", name, err)
	}
	ver, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", name, err)
	}
	return &Signer{priv: priv, vkey: vkey, ver: ver}, nil
}

// Name is the key's name.
func (s *Signer) Name() string { return s.ver.Name() }

// KeyHash is the note key hash of the key.
func (s *Signer) KeyHash() uint32 { return s.ver.KeyHash() }

// Sign signs msg.
func (s *Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// VerifierKey is the public key to hand to recipients and auditors.
func (s *Signer) VerifierKey() string { return s.vkey }

// Verifier checks this key's signatures.
func (s *Signer) Verifier() note.Verifier { return s.ver }

var _ note.Signer = (*Signer)(nil)
