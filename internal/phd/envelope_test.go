package phd

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSealOpenRoundTrip(t *testing.T) {
	hospital := newHospitalKey(t)
	for _, alg := range []string{"ES256", "EdDSA"} {
		for _, n := range []int{1, 8, 32} {
			t.Run(fmt.Sprintf("%s/%d", alg, n), func(t *testing.T) {
				key := deviceKey(t, alg)
				signer := newSigner(t, "bp-0001", key)
				batch := sampleBatch(t, "bp-0001", n)
				msg := mustSeal(t, batch, signer, hospital.PublicKey())

				s := mustParse(t, msg)
				wantHdr := Header{DeviceID: "bp-0001", MessageID: batch.MessageID, Seq: 42,
					Time: batch.Sent.Truncate(time.Second), Patient: "pt-7f3a9c", Algorithm: alg}
				if diff := cmp.Diff(wantHdr, s.Header()); diff != "" {
					t.Errorf("header mismatch (-want +got):\n%s", diff)
				}
				if err := s.Verify(key.Public()); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				got, err := Open(s, hospital)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				batch.Sent = batch.Sent.Truncate(time.Second)
				if diff := cmp.Diff(&batch, got); diff != "" {
					t.Errorf("batch mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// The gateway must be able to check a message without the hospital key:
// the payload it sees holds no plaintext.
func TestPayloadHidesMeasurements(t *testing.T) {
	hospital := newHospitalKey(t)
	batch := sampleBatch(t, "bp-0001", 1)
	batch.Measurements[0].Unit = "mm[Hg]"
	msg := mustSeal(t, batch, newSigner(t, "bp-0001", deviceKey(t, "EdDSA")), hospital.PublicKey())
	if bytes.Contains(msg, []byte("mm[Hg]")) {
		t.Errorf("sealed message contains the unit in clear")
	}
}

func TestVerifyRejects(t *testing.T) {
	hospital := newHospitalKey(t)
	for _, alg := range []string{"ES256", "EdDSA"} {
		key := deviceKey(t, alg)
		signer := newSigner(t, "dev-1", key)
		batch := sampleBatch(t, "dev-1", 2)
		msg := mustSeal(t, batch, signer, hospital.PublicKey())
		other := "EdDSA"
		if alg == "EdDSA" {
			other = "ES256"
		}
		tests := []struct {
			name string
			msg  func() []byte
			key  any
		}{
			{"forged signature", func() []byte {
				r := splitSign1(t, msg)
				r.Signature[0] ^= 0x01
				return joinSign1(t, r)
			}, key.Public()},
			{"wrong key same algorithm", func() []byte { return msg }, deviceKey(t, alg).Public()},
			{"wrong key type", func() []byte { return msg }, deviceKey(t, other).Public()},
			{"tampered payload byte", func() []byte {
				r := splitSign1(t, msg)
				r.Payload[len(r.Payload)/2] ^= 0x80
				return joinSign1(t, r)
			}, key.Public()},
			{"tampered protected header", func() []byte {
				r := splitSign1(t, msg)
				changed := batch
				changed.Seq++ // a valid header, just not the signed one
				r.Protected = protectedBytes(t, changed, int64(signer.alg))
				return joinSign1(t, r)
			}, key.Public()},
		}
		for _, tt := range tests {
			t.Run(alg+"/"+tt.name, func(t *testing.T) {
				s := mustParse(t, tt.msg())
				err := s.Verify(tt.key)
				wantReason(t, "Verify", err, ReasonBadSignature)
				if !errors.Is(err, ErrBadSignature) {
					t.Errorf("errors.Is(err, ErrBadSignature) = false for %v", err)
				}
				if s.Verified() {
					t.Errorf("Verified() = true after a failed Verify")
				}
				_, err = Open(s, hospital)
				wantReason(t, "Open after failed Verify", err, ReasonNotVerified)
			})
		}
	}
}

func TestVerifyRefusesOtherKeyKinds(t *testing.T) {
	hospital := newHospitalKey(t)
	msg := mustSeal(t, sampleBatch(t, "dev-1", 1), newSigner(t, "dev-1", deviceKey(t, "ES256")), hospital.PublicKey())
	s := mustParse(t, msg)
	wantReason(t, "Verify with an ECDH key", s.Verify(hospital.PublicKey()), ReasonUnsupportedAlgorithm)
}

func TestOpenRejects(t *testing.T) {
	hospital := newHospitalKey(t)
	keyA, keyB := deviceKey(t, "EdDSA"), deviceKey(t, "ES256")
	signerA, signerB := newSigner(t, "dev-a", keyA), newSigner(t, "dev-b", keyB)
	batchA := sampleBatch(t, "dev-a", 3)
	msgA := mustSeal(t, batchA, signerA, hospital.PublicKey())
	payloadA := splitSign1(t, msgA).Payload

	resign := func(b Batch, s *DeviceSigner, payload []byte) []byte {
		t.Helper()
		out, err := sign(b, s, payload)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name   string
		msg    []byte
		key    any
		priv   *ecdh.PrivateKey
		reason Reason
	}{
		{"wrong recipient key", msgA, keyA.Public(), newHospitalKey(t), ReasonWrongRecipient},
		{"another device re-signs the ciphertext", func() []byte {
			b := batchA
			b.DeviceID = "dev-b"
			return resign(b, signerB, payloadA)
		}(), keyB.Public(), hospital, ReasonBindingMismatch},
		{"header names another patient", func() []byte {
			b := batchA
			b.Patient = "pt-other"
			return resign(b, signerA, payloadA)
		}(), keyA.Public(), hospital, ReasonBindingMismatch},
		{"header names another sequence number", func() []byte {
			b := batchA
			b.Seq = 43
			return resign(b, signerA, payloadA)
		}(), keyA.Public(), hospital, ReasonBindingMismatch},
		{"ciphertext altered before signing", func() []byte {
			p := bytes.Clone(payloadA)
			// Flip a byte of the GCM tag at the end of the ciphertext
			// (the recipient structure follows it, so search backwards).
			enc, err := decodeEncrypt(p)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(p, enc.Ciphertext) + len(enc.Ciphertext) - 1
			p[i] ^= 0x01
			return resign(batchA, signerA, p)
		}(), keyA.Public(), hospital, ReasonUndecryptable},
		{"payload not COSE_Encrypt", resign(batchA, signerA, []byte{0x01}), keyA.Public(), hospital, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.msg)
			if err := s.Verify(tt.key); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			_, err := Open(s, tt.priv)
			wantReason(t, "Open", err, tt.reason)
		})
	}
}

// A device must not be able to smuggle duplicate keys into the plaintext.
func TestOpenRejectsDuplicateKeysInBatch(t *testing.T) {
	hospital := newHospitalKey(t)
	key := deviceKey(t, "EdDSA")
	signer := newSigner(t, "dev-1", key)
	batch := sampleBatch(t, "dev-1", 1)
	// {1: "dev-1", 1: "dev-1", ...}: map header a6 claims six pairs.
	plain, err := encodeBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	dup := append([]byte{0xa6, 0x01, 0x65}, "dev-1"...)
	dup = append(dup, plain[1:]...)
	payload, err := encryptTo(hospital.PublicKey(), dup)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sign(batch, signer, payload)
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, msg)
	if err := s.Verify(key.Public()); err != nil {
		t.Fatal(err)
	}
	_, err = Open(s, hospital)
	wantReason(t, "Open", err, ReasonMalformed)
}

func TestParseSignedRejects(t *testing.T) {
	hospital := newHospitalKey(t)
	batch := sampleBatch(t, "dev-1", 1)
	good := mustSeal(t, batch, newSigner(t, "dev-1", deviceKey(t, "EdDSA")), hospital.PublicKey())
	withProtected := func(p []byte) []byte {
		r := splitSign1(t, good)
		r.Protected = p
		return joinSign1(t, r)
	}
	hdr := protectedBytes(t, batch, -8)
	tests := []struct {
		name   string
		msg    []byte
		limits func(*Limits)
		reason Reason
	}{
		{"huge message", good, func(l *Limits) { l.MaxMessageBytes = len(good) - 1 }, ReasonTooLarge},
		{"empty", nil, nil, ReasonMalformed},
		{"garbage", []byte("not cbor at all"), nil, ReasonMalformed},
		{"truncated", good[:len(good)-5], nil, ReasonMalformed},
		{"trailing bytes", append(bytes.Clone(good), 0x00), nil, ReasonMalformed},
		{"untagged array", good[1:], nil, ReasonMalformed},
		{"indefinite-length array", append([]byte{0xd2, 0x9f}, good[2:]...), nil, ReasonMalformed},
		{"deep nesting", bytes.Repeat([]byte{0x81}, 200), nil, ReasonMalformed},
		{"huge declared array", []byte{0xd2, 0x9a, 0x7f, 0xff, 0xff, 0xff}, nil, ReasonMalformed},
		{"duplicate key in protected header", withProtected(append([]byte{0xa6, 0x04, 0x41, 'x'}, hdr[1:]...)), nil, ReasonMalformed},
		{"unknown protected label", withProtected(append([]byte{0xa6, 0x18, 0x63, 0x00}, hdr[1:]...)), nil, ReasonMalformed},
		{"unsupported algorithm ES384", withProtected(protectedBytes(t, batch, -35)), nil, ReasonUnsupportedAlgorithm},
		{"sequence number zero", withProtected(func() []byte { b := batch; b.Seq = 0; return protectedBytes(t, b, -8) }()), nil, ReasonMalformed},
		{"device id with spaces", withProtected(func() []byte { b := batch; b.DeviceID = "dev 1"; return protectedBytes(t, b, -8) }()), nil, ReasonMalformed},
		{"unprotected header not empty", func() []byte {
			r := splitSign1(t, good)
			r.Unprotected = []byte{0xa1, 0x04, 0x41, 'x'}
			return joinSign1(t, r)
		}(), nil, ReasonMalformed},
		{"no payload", func() []byte {
			r := splitSign1(t, good)
			r.Payload = []byte{}
			return joinSign1(t, r)
		}(), nil, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := DefaultLimits()
			if tt.limits != nil {
				tt.limits(&lim)
			}
			_, err := ParseSigned(tt.msg, lim)
			wantReason(t, "ParseSigned", err, tt.reason)
		})
	}
}

func TestSealRejects(t *testing.T) {
	hospital := newHospitalKey(t)
	signer := newSigner(t, "dev-1", deviceKey(t, "EdDSA"))
	tests := []struct {
		name   string
		edit   func(*Batch)
		reason Reason
	}{
		{"no measurements", func(b *Batch) { b.Measurements = nil }, ReasonMalformed},
		{"too many measurements", func(b *Batch) {
			for len(b.Measurements) <= DefaultLimits().MaxMeasurements {
				b.Measurements = append(b.Measurements, b.Measurements[0])
			}
		}, ReasonTooManyMeasurements},
		{"signer is another device", func(b *Batch) { b.DeviceID = "dev-2" }, ReasonBindingMismatch},
		{"sequence zero", func(b *Batch) { b.Seq = 0 }, ReasonMalformed},
		{"no message id", func(b *Batch) { b.MessageID = MessageID{} }, ReasonMalformed},
		{"no send time", func(b *Batch) { b.Sent = time.Time{} }, ReasonMalformed},
		{"patient reference with a name", func(b *Batch) { b.Patient = "Hong Gildong" }, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := sampleBatch(t, "dev-1", 1)
			tt.edit(&b)
			_, err := Seal(b, signer, hospital.PublicKey())
			wantReason(t, "Seal", err, tt.reason)
		})
	}
}

func TestNewDeviceSignerRefusesOtherKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewDeviceSigner("dev-1", p384)
	wantReason(t, "NewDeviceSigner(P-384)", err, ReasonUnsupportedAlgorithm)
}

func TestHeaderCheckBinding(t *testing.T) {
	h := Header{DeviceID: "dev-1", Patient: "pt-1"}
	if err := h.CheckBinding("dev-1", "pt-1"); err != nil {
		t.Errorf("CheckBinding(own certificate) = %v", err)
	}
	for _, c := range []struct{ dev, pt string }{{"dev-2", "pt-1"}, {"dev-1", "pt-2"}} {
		err := h.CheckBinding(c.dev, c.pt)
		wantReason(t, "CheckBinding("+c.dev+", "+c.pt+")", err, ReasonCertificateMismatch)
		if !errors.Is(err, ErrCertificateMismatch) {
			t.Errorf("errors.Is(%v, ErrCertificateMismatch) = false", err)
		}
	}
}

func TestOpenAppliesMaxMeasurements(t *testing.T) {
	hospital := newHospitalKey(t)
	key := deviceKey(t, "EdDSA")
	msg := mustSeal(t, sampleBatch(t, "dev-1", 32), newSigner(t, "dev-1", key), hospital.PublicKey())
	lim := DefaultLimits()
	lim.MaxMeasurements = 16
	s, err := ParseSigned(msg, lim)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(key.Public()); err != nil {
		t.Fatal(err)
	}
	_, err = Open(s, hospital)
	wantReason(t, "Open with 32 > 16 measurements", err, ReasonTooManyMeasurements)
}

func TestRecipientKeyID(t *testing.T) {
	hospital := newHospitalKey(t)
	s := mustParse(t, mustSeal(t, sampleBatch(t, "dev-1", 1), newSigner(t, "dev-1", deviceKey(t, "ES256")), hospital.PublicKey()))
	got, err := s.RecipientKeyID()
	if err != nil {
		t.Fatal(err)
	}
	if want := HospitalKeyID(hospital.PublicKey()); !bytes.Equal(got, want) {
		t.Errorf("RecipientKeyID = %x, want %x", got, want)
	}
	if other := HospitalKeyID(newHospitalKey(t).PublicKey()); bytes.Equal(got, other) {
		t.Errorf("two hospital keys share a key id")
	}
}
