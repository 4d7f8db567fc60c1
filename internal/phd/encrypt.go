package phd

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// The payload of the signed message is a COSE_Encrypt (RFC 9052 §5.1) with
// one recipient using direct key agreement: ECDH-ES + HKDF-256 (RFC 9053
// §6.3.1, alg -25) with an ephemeral P-256 key, deriving the content key for
// AES-256-GCM (RFC 9053 §4.1, alg 3). Only standard-library primitives are
// composed here (crypto/ecdh, crypto/hkdf, crypto/aes, crypto/cipher).
const (
	tagCOSEEncrypt   = 96  // COSE_Encrypt_Tagged
	algA256GCM       = 3   // content layer
	algECDHESHKDF256 = -25 // recipient layer
	a256KeyBits      = 256
	gcmNonceSize     = 12
	coseKtyEC2       = 2
	coseCrvP256      = 1
)

// Serialized protected headers: {1: 3} and {1: -25}.
var (
	contentProtected   = mustEncode(map[int]int{1: algA256GCM})
	recipientProtected = mustEncode(map[int]int{1: algECDHESHKDF256})
)

func mustEncode(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(err) // static values
	}
	return b
}

type coseEncrypt struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected contentUnprotected
	Ciphertext  []byte
	Recipients  []coseRecipient
}

type contentUnprotected struct {
	IV []byte `cbor:"5,keyasint"`
}

type coseRecipient struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected recipientUnprotected
	Ciphertext  []byte // empty for direct key agreement
}

type recipientUnprotected struct {
	EphemeralKey coseKey `cbor:"-1,keyasint"`
	KeyID        []byte  `cbor:"4,keyasint"`
}

// coseKey is an EC2 COSE_Key (RFC 9053 §7.1.1) with an uncompressed point.
type coseKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

type protectedAlg struct {
	Alg int64 `cbor:"1,keyasint"`
}

// HospitalKeyID names an ingestion key in the recipient's kid: the first 16
// bytes of SHA-256 over the uncompressed public point. A server holding
// several keys (rotation) picks the one this names.
func HospitalKeyID(pub *ecdh.PublicKey) []byte {
	sum := sha256.Sum256(pub.Bytes())
	return sum[:16]
}

// kdfContext encodes COSE_KDF_Context (RFC 9053 §5.2) with PartyU and
// PartyV left nil, as no header parameter supplies them:
//
//	[ AlgorithmID, [nil, nil, nil], [nil, nil, nil], [keyDataLength, protected] ]
//
// protected is the serialized protected header of the recipient layer.
func kdfContext(alg int64, keyBits int, protected []byte) ([]byte, error) {
	party := []any{nil, nil, nil}
	return encMode.Marshal([]any{alg, party, party, []any{keyBits, protected}})
}

// encStructure is the additional data of the content layer (RFC 9052 §5.3)
// with empty external AAD: ["Encrypt", protected, h”].
func encStructure(protected []byte) ([]byte, error) {
	return encMode.Marshal([]any{"Encrypt", protected, []byte{}})
}

// deriveKey is HKDF-SHA-256 with no salt (RFC 9053 §5.1: the salt parameter
// is absent), the ECDH shared secret as input keying material and the
// encoded COSE_KDF_Context as info.
func deriveKey(secret, context []byte, size int) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, string(context), size)
}

// encryptTo seals plaintext for the holder of pub.
func encryptTo(pub *ecdh.PublicKey, plaintext []byte) ([]byte, error) {
	if pub == nil || pub.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("encrypt batch: hospital key must be a P-256 key")
	}
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("encrypt batch: ephemeral key: %w", err)
	}
	secret, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("encrypt batch: key agreement: %w", err)
	}
	iv := make([]byte, gcmNonceSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("encrypt batch: nonce: %w", err)
	}
	ciphertext, err := sealContent(secret, iv, plaintext)
	if err != nil {
		return nil, fmt.Errorf("encrypt batch: %w", err)
	}
	msg := coseEncrypt{
		Protected:   contentProtected,
		Unprotected: contentUnprotected{IV: iv},
		Ciphertext:  ciphertext,
		Recipients: []coseRecipient{{
			Protected:   recipientProtected,
			Unprotected: recipientUnprotected{EphemeralKey: ec2Key(eph.PublicKey()), KeyID: HospitalKeyID(pub)},
			Ciphertext:  []byte{},
		}},
	}
	return encMode.Marshal(cbor.Tag{Number: tagCOSEEncrypt, Content: msg})
}

func ec2Key(pub *ecdh.PublicKey) coseKey {
	point := pub.Bytes() // 0x04 || X || Y
	n := (len(point) - 1) / 2
	return coseKey{Kty: coseKtyEC2, Crv: coseCrvP256, X: point[1 : 1+n], Y: point[1+n:]}
}

// contentAEAD derives the content key; protected is the recipient layer's
// protected header as serialized on the wire.
func contentAEAD(secret, protected []byte) (cipher.AEAD, error) {
	ctx, err := kdfContext(algA256GCM, a256KeyBits, protected)
	if err != nil {
		return nil, err
	}
	key, err := deriveKey(secret, ctx, a256KeyBits/8)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealContent(secret, iv, plaintext []byte) ([]byte, error) {
	aead, err := contentAEAD(secret, recipientProtected)
	if err != nil {
		return nil, err
	}
	aad, err := encStructure(contentProtected)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, iv, plaintext, aad), nil
}

// decryptWith opens a COSE_Encrypt made by encryptTo.
func decryptWith(priv *ecdh.PrivateKey, payload []byte) ([]byte, error) {
	msg, err := decodeEncrypt(payload)
	if err != nil {
		return nil, err
	}
	r := msg.Recipients[0]
	if !bytes.Equal(r.Unprotected.KeyID, HospitalKeyID(priv.PublicKey())) {
		return nil, refuse(ReasonWrongRecipient, "batch is encrypted to another hospital key")
	}
	eph, err := ecdh.P256().NewPublicKey(uncompressed(r.Unprotected.EphemeralKey))
	if err != nil {
		return nil, refuseWrap(ReasonMalformed, "ephemeral key", err)
	}
	secret, err := priv.ECDH(eph)
	if err != nil {
		return nil, refuseWrap(ReasonUndecryptable, "key agreement", err)
	}
	return openContent(secret, msg)
}

func openContent(secret []byte, msg *coseEncrypt) ([]byte, error) {
	aead, err := contentAEAD(secret, msg.Recipients[0].Protected)
	if err != nil {
		return nil, fmt.Errorf("open batch: %w", err)
	}
	aad, err := encStructure(msg.Protected)
	if err != nil {
		return nil, fmt.Errorf("open batch: %w", err)
	}
	plaintext, err := aead.Open(nil, msg.Unprotected.IV, msg.Ciphertext, aad)
	if err != nil {
		return nil, refuse(ReasonUndecryptable, "batch does not decrypt with the hospital key")
	}
	return plaintext, nil
}

func uncompressed(k coseKey) []byte {
	return append(append([]byte{4}, k.X...), k.Y...)
}

// decodeEncrypt decodes and checks the structure: one recipient, the
// expected algorithms, a 12-byte IV and a 32-byte P-256 point.
func decodeEncrypt(payload []byte) (*coseEncrypt, error) {
	var tag cbor.RawTag
	if err := decMode.Unmarshal(payload, &tag); err != nil || tag.Number != tagCOSEEncrypt {
		return nil, refuse(ReasonMalformed, "payload is not a tagged COSE_Encrypt")
	}
	var msg coseEncrypt
	if err := decMode.Unmarshal(tag.Content, &msg); err != nil {
		return nil, refuseWrap(ReasonMalformed, "COSE_Encrypt", err)
	}
	if err := checkEncrypt(&msg); err != nil {
		return nil, err
	}
	return &msg, nil
}

func checkEncrypt(msg *coseEncrypt) error {
	if err := checkAlg(msg.Protected, algA256GCM, "content"); err != nil {
		return err
	}
	if len(msg.Unprotected.IV) != gcmNonceSize {
		return refuse(ReasonMalformed, "content IV must be %d bytes", gcmNonceSize)
	}
	if len(msg.Recipients) != 1 {
		return refuse(ReasonMalformed, "COSE_Encrypt must have exactly one recipient")
	}
	r := msg.Recipients[0]
	if err := checkAlg(r.Protected, algECDHESHKDF256, "recipient"); err != nil {
		return err
	}
	if len(r.Ciphertext) != 0 {
		return refuse(ReasonMalformed, "direct key agreement carries no wrapped key")
	}
	k := r.Unprotected.EphemeralKey
	if k.Kty != coseKtyEC2 || k.Crv != coseCrvP256 || len(k.X) != 32 || len(k.Y) != 32 {
		return refuse(ReasonMalformed, "ephemeral key must be an uncompressed P-256 EC2 key")
	}
	return nil
}

// checkAlg decodes a serialized protected header that must hold exactly
// the given algorithm.
func checkAlg(protected []byte, want int64, layer string) error {
	var h protectedAlg
	if err := batchMode.Unmarshal(protected, &h); err != nil {
		return refuseWrap(ReasonMalformed, layer+" protected header", err)
	}
	if h.Alg != want {
		return refuse(ReasonMalformed, "%s algorithm %d, want %d", layer, h.Alg, want)
	}
	return nil
}
