package phd

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/veraison/go-cose"
)

// The signed message is a tagged COSE_Sign1 (RFC 9052 §4.2). Its protected
// header carries what a gateway needs without decrypting:
//
//	1 (alg)    -7 ES256 or -8 EdDSA
//	3 (ctype)  96, the CoAP Content-Format of application/cose; cose-type="cose-encrypt"
//	4 (kid)    device id
//	15 (CWT claims, RFC 9597) {2 sub: patient reference, 6 iat: send time, 7 cti: message id}
//	-65537     sequence number (private-use label, RFC 9052 §16.2)
//
// The unprotected header is empty; the payload is the COSE_Encrypt.
const payloadContentType = 96

type protectedHeader struct {
	Alg         int64     `cbor:"1,keyasint"`
	ContentType uint64    `cbor:"3,keyasint"`
	KeyID       []byte    `cbor:"4,keyasint"`
	Claims      cwtClaims `cbor:"15,keyasint"`
	Seq         uint64    `cbor:"-65537,keyasint"`
}

type cwtClaims struct {
	Subject  string `cbor:"2,keyasint"`
	IssuedAt int64  `cbor:"6,keyasint"`
	ID       []byte `cbor:"7,keyasint"`
}

// Header is what the signed, unencrypted part of a message says.
type Header struct {
	DeviceID  string
	MessageID MessageID
	Seq       uint64
	Time      time.Time // send time, whole seconds
	Patient   string    // pseudonymous patient reference the certificate must match
	Algorithm string    // "ES256" or "EdDSA"
}

// DeviceSigner signs messages with a device's private key. The key may live
// in a secure element behind crypto.Signer.
type DeviceSigner struct {
	deviceID string
	alg      cose.Algorithm
	signer   cose.Signer
	pub      crypto.PublicKey
}

// NewDeviceSigner picks ES256 for a P-256 ECDSA key and EdDSA for Ed25519.
func NewDeviceSigner(deviceID string, key crypto.Signer) (*DeviceSigner, error) {
	if err := checkDeviceID(deviceID); err != nil {
		return nil, err
	}
	alg, err := algorithmFor(key.Public())
	if err != nil {
		return nil, err
	}
	s, err := cose.NewSigner(alg, key)
	if err != nil {
		return nil, fmt.Errorf("device signer %s: %w", deviceID, err)
	}
	return &DeviceSigner{deviceID: deviceID, alg: alg, signer: s, pub: key.Public()}, nil
}

// Public is the device's public key, the one its certificate carries.
func (s *DeviceSigner) Public() crypto.PublicKey { return s.pub }

// DeviceID is the id the signer signs for.
func (s *DeviceSigner) DeviceID() string { return s.deviceID }

// Algorithm is "ES256" or "EdDSA".
func (s *DeviceSigner) Algorithm() string { return s.alg.String() }

func algorithmFor(pub crypto.PublicKey) (cose.Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return cose.AlgorithmES256, nil
		}
	case ed25519.PublicKey:
		return cose.AlgorithmEdDSA, nil
	}
	return 0, refuse(ReasonUnsupportedAlgorithm, "device keys must be ECDSA P-256 or Ed25519, not %T", pub)
}

// Seal encrypts batch to the hospital's ingestion key and signs the result
// with the device key. Batch.Sent is carried to the second.
func Seal(batch Batch, signer *DeviceSigner, hospitalPub *ecdh.PublicKey) ([]byte, error) {
	if err := checkBatchShape(&batch, DefaultLimits().MaxMeasurements); err != nil {
		return nil, err
	}
	if batch.DeviceID != signer.deviceID {
		return nil, refuse(ReasonBindingMismatch, "batch is for device %s but the signer is %s", batch.DeviceID, signer.deviceID)
	}
	if batch.Sent.Unix() <= 0 {
		return nil, refuse(ReasonMalformed, "batch send time is missing")
	}
	plaintext, err := encodeBatch(batch)
	if err != nil {
		return nil, fmt.Errorf("seal batch %s: %w", batch.MessageID, err)
	}
	payload, err := encryptTo(hospitalPub, plaintext)
	if err != nil {
		return nil, fmt.Errorf("seal batch %s: %w", batch.MessageID, err)
	}
	return sign(batch, signer, payload)
}

func sign(batch Batch, signer *DeviceSigner, payload []byte) ([]byte, error) {
	raw, err := encodeProtected(protectedHeader{
		Alg: int64(signer.alg), ContentType: payloadContentType, KeyID: []byte(batch.DeviceID),
		Claims: cwtClaims{Subject: batch.Patient, IssuedAt: batch.Sent.Unix(), ID: batch.MessageID[:]},
		Seq:    batch.Seq,
	})
	if err != nil {
		return nil, fmt.Errorf("sign batch %s: %w", batch.MessageID, err)
	}
	msg := cose.Sign1Message{
		Headers: cose.Headers{
			RawProtected: raw,
			Protected:    cose.ProtectedHeader{cose.HeaderLabelAlgorithm: signer.alg},
			Unprotected:  cose.UnprotectedHeader{},
		},
		Payload: payload,
	}
	if err := msg.Sign(rand.Reader, nil, signer.signer); err != nil {
		return nil, fmt.Errorf("sign batch %s: %w", batch.MessageID, err)
	}
	return msg.MarshalCBOR()
}

// encodeProtected writes the protected header as COSE wants it: a byte
// string holding the encoded map.
func encodeProtected(h protectedHeader) ([]byte, error) {
	inner, err := encMode.Marshal(h)
	if err != nil {
		return nil, err
	}
	return encMode.Marshal(inner)
}

// CheckBinding compares the header with what the device's certificate
// binds it to (its serial and its pseudonymous patient reference). The
// gateway and the server both call it with the certificate's values.
func (h Header) CheckBinding(deviceID, patient string) error {
	if h.DeviceID != deviceID {
		return refuse(ReasonCertificateMismatch, "message names device %s, the certificate %s", h.DeviceID, deviceID)
	}
	if h.Patient != patient {
		return refuse(ReasonCertificateMismatch, "message from device %s names a patient its certificate is not bound to", h.DeviceID)
	}
	return nil
}

// Signed is a parsed, not yet verified, message.
type Signed struct {
	msg      cose.Sign1Message
	header   Header
	alg      cose.Algorithm
	limits   Limits // from ParseSigned; Open applies MaxMeasurements
	verified bool
}

// ParseSigned decodes a message without verifying it, within limits: the
// size first, then well-formedness under the bounded decoder (nesting,
// array and map sizes, no indefinite lengths, no duplicate map keys, no
// unknown header labels), then the header fields. The Signed may keep
// references into msg: do not change msg while using it.
func ParseSigned(msg []byte, limits Limits) (*Signed, error) {
	if len(msg) > limits.MaxMessageBytes {
		return nil, refuse(ReasonTooLarge, "message is %d bytes, at most %d allowed", len(msg), limits.MaxMessageBytes)
	}
	if err := decMode.Wellformed(msg); err != nil {
		return nil, refuseWrap(ReasonMalformed, "message", err)
	}
	s := &Signed{limits: limits}
	if err := s.msg.UnmarshalCBOR(msg); err != nil {
		return nil, refuseWrap(ReasonMalformed, "COSE_Sign1", err)
	}
	if len(s.msg.Headers.Unprotected) != 0 {
		return nil, refuse(ReasonMalformed, "unprotected header must be empty")
	}
	if len(s.msg.Payload) == 0 {
		return nil, refuse(ReasonMalformed, "message has no payload")
	}
	if err := s.readHeader(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Signed) readHeader() error {
	var inner []byte
	if err := decMode.Unmarshal(s.msg.Headers.RawProtected, &inner); err != nil {
		return refuseWrap(ReasonMalformed, "protected header", err)
	}
	var h protectedHeader
	if err := decMode.Unmarshal(inner, &h); err != nil {
		return refuseWrap(ReasonMalformed, "protected header", err)
	}
	hdr, err := headerFrom(h)
	if err != nil {
		return err
	}
	s.alg, s.header = cose.Algorithm(h.Alg), hdr
	return nil
}

func headerFrom(h protectedHeader) (Header, error) {
	alg := cose.Algorithm(h.Alg)
	if alg != cose.AlgorithmES256 && alg != cose.AlgorithmEdDSA {
		return Header{}, refuse(ReasonUnsupportedAlgorithm, "signature algorithm %d; ES256 (-7) or EdDSA (-8) required", h.Alg)
	}
	if h.ContentType != payloadContentType {
		return Header{}, refuse(ReasonMalformed, "payload content type must be COSE_Encrypt")
	}
	if len(h.Claims.ID) != len(MessageID{}) || h.Claims.IssuedAt <= 0 || h.Seq == 0 {
		return Header{}, refuse(ReasonMalformed, "header needs a 16-byte message id, a send time and a sequence number from 1")
	}
	hdr := Header{DeviceID: string(h.KeyID), Seq: h.Seq, Time: time.Unix(h.Claims.IssuedAt, 0).UTC(),
		Patient: h.Claims.Subject, Algorithm: alg.String()}
	copy(hdr.MessageID[:], h.Claims.ID)
	if err := checkDeviceID(hdr.DeviceID); err != nil {
		return Header{}, err
	}
	return hdr, checkPatientRef(hdr.Patient)
}

// Header returns what the signed header says. Until Verify succeeds it is
// a claim, good for choosing the key and for refusing early, nothing more.
func (s *Signed) Header() Header { return s.header }

// Verified reports whether Verify succeeded.
func (s *Signed) Verified() bool { return s.verified }

// Verify checks the signature with the device's public key (from its
// certificate). The key type must fit the header's algorithm.
func (s *Signed) Verify(pub crypto.PublicKey) error {
	alg, err := algorithmFor(pub)
	if err != nil {
		return err
	}
	if alg != s.alg {
		return refuse(ReasonBadSignature, "message is signed with %s but the device key is for %s", s.alg, alg)
	}
	v, err := cose.NewVerifier(alg, pub)
	if err != nil {
		return refuseWrap(ReasonUnsupportedAlgorithm, "verifier", err)
	}
	if err := s.msg.Verify(nil, v); err != nil {
		return refuse(ReasonBadSignature, "signature does not verify with device %s's key", s.header.DeviceID)
	}
	s.verified = true
	return nil
}

// RecipientKeyID returns the hospital key id (HospitalKeyID) the payload
// is encrypted to, so a server that rotates ingestion keys can pick the
// private key to Open with. It reads no plaintext.
func (s *Signed) RecipientKeyID() ([]byte, error) {
	enc, err := decodeEncrypt(s.msg.Payload)
	if err != nil {
		return nil, err
	}
	return enc.Recipients[0].Unprotected.KeyID, nil
}

// Open decrypts a verified message with the hospital's ingestion key and
// checks that the batch inside is bound to the same device, patient,
// sequence number and message id as the signed header, and holds no more
// measurements than the Limits given to ParseSigned allow.
func Open(s *Signed, hospitalPriv *ecdh.PrivateKey) (*Batch, error) {
	if !s.verified {
		return nil, refuse(ReasonNotVerified, "verify the signature before opening")
	}
	plaintext, err := decryptWith(hospitalPriv, s.msg.Payload)
	if err != nil {
		return nil, err
	}
	b, err := DecodeBatch(plaintext)
	if err != nil {
		return nil, err
	}
	if most := s.limits.MaxMeasurements; most > 0 && len(b.Measurements) > most {
		return nil, refuse(ReasonTooManyMeasurements, "batch holds %d measurements, at most %d allowed", len(b.Measurements), most)
	}
	h := s.header
	if b.DeviceID != h.DeviceID || b.Patient != h.Patient || b.Seq != h.Seq || b.MessageID != h.MessageID {
		return nil, refuse(ReasonBindingMismatch, "encrypted batch does not match the signed header of message %s", h.MessageID)
	}
	b.Sent = h.Time
	return b, nil
}
