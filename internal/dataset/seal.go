package dataset

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Names of the system secrets (wrapped by the KEK in the key store) the
// dataset keys derive from.
const (
	// secretsKeyName seals each dataset's own secret and its row map.
	secretsKeyName = "dataset-secrets"
	// signerKeyName is the seed of the manifest-signing key.
	signerKeyName = "dataset-signer"
)

// Purposes of keys derived from a secret; one key per use, so a key that
// leaks for one use reveals nothing of another.
const (
	keySecretSeal = "medsec dataset secret seal v1"
	keyRowMap     = "medsec dataset row map v1"
	keyUnits      = "medsec dataset job units v1"
	keyText       = "medsec dataset text surrogates v1"
	keyIndex      = "medsec dataset pseudonym index v1"
)

// errOpen is an AEAD failure: wrong key, other associated data, or changed
// bytes.
var errOpen = errors.New("sealed data does not open (changed, or sealed for something else)")

// derive makes a 32-byte key for purpose from secret (HKDF-SHA-256).
func derive(secret []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, purpose, 32)
	if err != nil {
		panic("dataset: HKDF of 32 bytes cannot fail: " + err.Error())
	}
	return k
}

// newSecret draws a fresh per-dataset secret.
func newSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return b
}

// seal encrypts with AES-256-GCM: nonce || ciphertext and tag, aad bound.
func seal(key []byte, aad string, plaintext []byte) []byte {
	a := gcm(key)
	nonce := make([]byte, a.NonceSize())
	rand.Read(nonce)
	return a.Seal(nonce, nonce, plaintext, []byte(aad))
}

func open(key []byte, aad string, sealed []byte) ([]byte, error) {
	a := gcm(key)
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errOpen
	}
	pt, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(aad))
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("dataset: AES key of %d bytes: %v", len(key), err))
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic("dataset: GCM: " + err.Error())
	}
	return a
}

// mac is HMAC-SHA-256 of s under key (blind index of a row pseudonym).
func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}
