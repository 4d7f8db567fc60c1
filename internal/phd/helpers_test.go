package phd

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// testNow is the receiver's clock in tests.
var testNow = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func newHospitalKey(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// deviceKey makes a key for alg "ES256" or "EdDSA".
func deviceKey(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	switch alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	t.Fatalf("unknown algorithm %q", alg)
	return nil
}

func newSigner(t testing.TB, deviceID string, key crypto.Signer) *DeviceSigner {
	t.Helper()
	s, err := NewDeviceSigner(deviceID, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sampleBatch returns n plausible measurements of varied kinds.
func sampleBatch(t testing.TB, deviceID string, n int) Batch {
	t.Helper()
	id, err := NewMessageID()
	if err != nil {
		t.Fatal(err)
	}
	b := Batch{DeviceID: deviceID, Patient: "pt-7f3a9c", Seq: 42, MessageID: id, Sent: testNow.Add(-time.Minute)}
	for i := range n {
		m := sampleMeasurements[i%len(sampleMeasurements)]
		m.Time = testNow.Add(-time.Duration(n-i) * time.Minute).Truncate(time.Millisecond)
		b.Measurements = append(b.Measurements, m)
	}
	return b
}

var sampleMeasurements = []Measurement{
	{Code: CodeBloodPressure, Unit: "mm[Hg]", Components: []Component{
		{Code: CodeSystolic, Value: 128}, {Code: CodeDiastolic, Value: 82}, {Code: CodeMeanPressure, Value: 97}}},
	{Code: CodePulseRate, Unit: "/min", Value: 71},
	{Code: CodeGlucoseCapillary, Unit: "mg/dL", Value: 104},
	{Code: CodeBodyWeight, Unit: "kg", Value: 68.4},
	{Code: CodeSpO2, Unit: "%", Value: 97},
	{Code: CodeBodyTemperature, Unit: "Cel", Value: 36.6},
	{Code: CodeSleepDuration, Unit: "h", Value: 7.25},
	{Code: CodeHeartRate, Unit: "/min", Value: 64},
}

// rawSign1 is a COSE_Sign1 taken apart, for tampering in tests.
type rawSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

func splitSign1(t testing.TB, msg []byte) rawSign1 {
	t.Helper()
	var tag cbor.RawTag
	if err := cbor.Unmarshal(msg, &tag); err != nil {
		t.Fatal(err)
	}
	var r rawSign1
	if err := cbor.Unmarshal(tag.Content, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func joinSign1(t testing.TB, r rawSign1) []byte {
	t.Helper()
	b, err := cbor.Marshal(cbor.Tag{Number: 18, Content: r})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protectedBytes returns the encoded protected header map of batch b.
func protectedBytes(t testing.TB, b Batch, alg int64) []byte {
	t.Helper()
	inner, err := encMode.Marshal(protectedHeader{
		Alg: alg, ContentType: payloadContentType, KeyID: []byte(b.DeviceID),
		Claims: cwtClaims{Subject: b.Patient, IssuedAt: b.Sent.Unix(), ID: b.MessageID[:]}, Seq: b.Seq,
	})
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

func mustSeal(t testing.TB, b Batch, s *DeviceSigner, pub *ecdh.PublicKey) []byte {
	t.Helper()
	msg, err := Seal(b, s, pub)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func mustParse(t testing.TB, msg []byte) *Signed {
	t.Helper()
	s, err := ParseSigned(msg, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantReason(t *testing.T, what string, err error, want Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want reason %q", what, want)
	}
	if got := ReasonOf(err); got != want {
		t.Fatalf("%s: got reason %q (%v), want %q", what, got, err, want)
	}
}
