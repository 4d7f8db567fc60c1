package provision

import (
	"crypto/rand"
	"fmt"
	"strings"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// RecipientKeys are the two key pairs a recipient makes for itself: an age
// X25519 identity that opens packages, and an Ed25519 note key that signs
// destruction receipts. The public halves go to the hospital; the private
// halves never leave the recipient.
type RecipientKeys struct {
	AgeIdentity  string // AGE-SECRET-KEY-1… (private)
	AgeRecipient string // age1… (public)
	SigningKey   string // PRIVATE+KEY+<id>+… (private)
	ReceiptKey   string // <id>+<hash>+<key> (public)
}

// GenerateRecipientKeys makes a recipient's key pairs; id names the
// receipt key and must be the id the hospital registers it under.
func GenerateRecipientKeys(id string) (RecipientKeys, error) {
	if !recipientIDPattern.MatchString(id) {
		return RecipientKeys{}, fmt.Errorf("%w: recipient id %q: 2–40 lower-case letters, digits and -", ErrInvalid, id)
	}
	ai, err := age.GenerateX25519Identity()
	if err != nil {
		return RecipientKeys{}, fmt.Errorf("generate age identity: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, id)
	if err != nil {
		return RecipientKeys{}, fmt.Errorf("generate receipt key: %w", err)
	}
	return RecipientKeys{AgeIdentity: ai.String(), AgeRecipient: ai.Recipient().String(), SigningKey: skey, ReceiptKey: vkey}, nil
}

// ParseIdentities reads age identities (an identity file's text).
func ParseIdentities(text string) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%w: not an age identity file: %v", ErrInvalid, err)
	}
	return ids, nil
}

// ParseVerifierKey reads a note verifier key (the hospital's or a
// recipient's public key).
func ParseVerifierKey(text string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("%w: not a medsec public key (name+hash+key): %v", ErrInvalid, err)
	}
	return v, nil
}

// ParseSigningKey reads a recipient's private receipt-signing key.
func ParseSigningKey(text string) (note.Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("%w: not a receipt signing key (PRIVATE+KEY+…): %v", ErrInvalid, err)
	}
	return s, nil
}
