package dataset

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Signer signs dataset manifests with the hospital's dataset key
// (Ed25519, seeded from a KEK-wrapped system secret, so the private key is
// never stored). Its verifier key ("name+hash+base64", the signed-note
// key format) is what a research team or an auditor holds to check a
// dataset outside the hospital.
type Signer struct {
	priv ed25519.PrivateKey
	vkey string
	ver  note.Verifier
}

func newSigner(name string, seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("dataset signing key: seed must be %d bytes", ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("dataset signing key %q: %w", name, err)
	}
	ver, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("dataset signing key %q: %w", name, err)
	}
	return &Signer{priv: priv, vkey: vkey, ver: ver}, nil
}

// VerifierKey is the public key to hand to whoever verifies datasets.
func (s *Signer) VerifierKey() string { return s.vkey }

// Verifier checks this key's signatures.
func (s *Signer) Verifier() note.Verifier { return s.ver }

// sign returns the bytes of manifest.sig for the manifest's bytes.
func (s *Signer) sign(manifest []byte) ([]byte, error) {
	sig := Signature{Format: SignatureFormat, Key: s.vkey,
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, SignedMessage(manifest)))}
	b, err := sig.encode()
	if err != nil {
		return nil, fmt.Errorf("encode signature: %w", err)
	}
	return b, nil
}

// NewVerifier parses a published verifier key (from `medsec dataset key`).
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("dataset verifier key: %w", err)
	}
	return v, nil
}
