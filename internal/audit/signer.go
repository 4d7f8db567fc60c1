package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Signer signs checkpoints as notes with an Ed25519 key (note algorithm 1).
type Signer struct {
	name string
	priv ed25519.PrivateKey
	hash uint32
}

// NewSigner makes a checkpoint signer named name from a 32-byte seed.
func NewSigner(name string, seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signer: seed must be %d bytes", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	h := sha256.Sum256(append([]byte(name+"\n\x01"), pub...))
	return &Signer{name: name, priv: priv, hash: binary.BigEndian.Uint32(h[:4])}, nil
}

// Name is the key's name (the log's origin).
func (s *Signer) Name() string { return s.name }

// KeyHash is the note key hash: the first four bytes of
// SHA-256(name "\n" 0x01 pubkey).
func (s *Signer) KeyHash() uint32 { return s.hash }

// Sign signs msg.
func (s *Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// VerifierKey is the public verifier key string a third party uses to check
// checkpoints ("<name>+<hash>+<keydata>").
func (s *Signer) VerifierKey() (string, error) {
	return note.NewEd25519VerifierKey(s.name, s.priv.Public().(ed25519.PublicKey))
}

var _ note.Signer = (*Signer)(nil)
