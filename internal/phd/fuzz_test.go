package phd

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Fixed keys for the fuzz targets, derived from public strings: test
// material only, so that committed seeds stay valid between runs.
var (
	fuzzDeviceKey   = ed25519.NewKeyFromSeed(sha256Sum("medsec fuzz device key"))
	fuzzHospitalKey = mustECDH(sha256Sum("medsec fuzz hospital key"))
	fuzzSigner      = mustSigner("fuzz-dev", fuzzDeviceKey)
)

func sha256Sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func mustECDH(b []byte) *ecdh.PrivateKey {
	k, err := ecdh.P256().NewPrivateKey(b)
	if err != nil {
		panic(err)
	}
	return k
}

func mustSigner(id string, k ed25519.PrivateKey) *DeviceSigner {
	s, err := NewDeviceSigner(id, k)
	if err != nil {
		panic(err)
	}
	return s
}

// fuzzBatch is the header every FuzzOpen input is signed under.
func fuzzBatch() Batch {
	return Batch{DeviceID: "fuzz-dev", Patient: "pt-fuzz", Seq: 7,
		MessageID: MessageID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Sent:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Measurements: []Measurement{
			{Code: CodeSpO2, Unit: "%", Value: 97, Time: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)},
			sampleMeasurements[0],
		}}
}

// checkRefusal: every error a parser returns to an untrusted sender must
// carry a reason other than internal.
func checkRefusal(t *testing.T, what string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Reason == ReasonInternal || e.Reason == "" {
		t.Fatalf("%s returned %v, want an *Error with a reason", what, err)
	}
}

func FuzzParseSigned(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := ParseSigned(msg, DefaultLimits())
		if err != nil {
			checkRefusal(t, "ParseSigned", err)
			return
		}
		h := s.Header()
		if checkDeviceID(h.DeviceID) != nil || checkPatientRef(h.Patient) != nil || h.Seq == 0 {
			t.Fatalf("ParseSigned accepted a bad header %+v", h)
		}
		if err := s.Verify(fuzzDeviceKey.Public()); err != nil {
			checkRefusal(t, "Verify", err)
			return
		}
		if _, err := Open(s, fuzzHospitalKey); err != nil {
			checkRefusal(t, "Open", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 {
			return
		}
		hdr := fuzzBatch()
		msg, err := sign(hdr, fuzzSigner, payload)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSigned(msg, Limits{MaxMessageBytes: 1 << 20})
		if err != nil {
			t.Fatalf("ParseSigned of our own message: %v", err)
		}
		if err := s.Verify(fuzzDeviceKey.Public()); err != nil {
			t.Fatalf("Verify of our own message: %v", err)
		}
		b, err := Open(s, fuzzHospitalKey)
		if err != nil {
			checkRefusal(t, "Open", err)
			return
		}
		if b.DeviceID != hdr.DeviceID || b.Patient != hdr.Patient || b.Seq != hdr.Seq || b.MessageID != hdr.MessageID {
			t.Fatalf("Open returned a batch bound elsewhere: %+v", b)
		}
		Assess(b, hdr.Sent, DefaultLimits())
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, plaintext []byte) {
		b, err := DecodeBatch(plaintext)
		if err != nil {
			checkRefusal(t, "DecodeBatch", err)
			return
		}
		again, err := encodeBatch(*b)
		if err != nil {
			t.Fatalf("re-encode an accepted batch: %v", err)
		}
		b2, err := DecodeBatch(again)
		if err != nil {
			t.Fatalf("decode a re-encoded batch: %v", err)
		}
		if diff := cmp.Diff(b, b2); diff != "" {
			t.Fatalf("batch changed through a round trip:\n%s", diff)
		}
		a := Assess(b, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DefaultLimits())
		for _, r := range a.Readings {
			if _, err := RenderObservationJSON(r); err != nil {
				t.Fatalf("render an accepted reading: %v", err)
			}
		}
	})
}

func FuzzDecodeReading(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReading(data)
		if err != nil {
			checkRefusal(t, "DecodeReading", err)
			return
		}
		if _, err := EncodeReading(r); err != nil {
			t.Fatalf("re-encode a decoded reading: %v", err)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus when
// MEDSEC_WRITE_FUZZ_SEEDS=1; otherwise it checks the corpus is there.
func TestWriteFuzzSeeds(t *testing.T) {
	seeds := fuzzSeeds(t)
	for target, inputs := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if os.Getenv("MEDSEC_WRITE_FUZZ_SEEDS") != "1" {
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) < len(inputs) {
				t.Errorf("%s holds %d seeds, want %d; run with MEDSEC_WRITE_FUZZ_SEEDS=1", dir, len(entries), len(inputs))
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, in := range inputs {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func fuzzSeeds(t *testing.T) map[string][][]byte {
	b := fuzzBatch()
	plain, err := encodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := encryptTo(fuzzHospitalKey.PublicKey(), plain)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sign(b, fuzzSigner, payload)
	if err != nil {
		t.Fatal(err)
	}
	es := newSigner(t, "fuzz-dev", deviceKey(t, "ES256"))
	msgES, err := Seal(b, es, fuzzHospitalKey.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	otherPayload, err := encryptTo(newHospitalKey(t).PublicKey(), plain)
	if err != nil {
		t.Fatal(err)
	}
	bp := sampleBatch(t, "fuzz-dev", 9)
	plainBP, _ := encodeBatch(bp)
	stored, _ := EncodeReading(reading(sampleMeasurements[0], FlagAboveLimits))
	storedSimple, _ := EncodeReading(reading(sampleMeasurements[4], 0))
	return map[string][][]byte{
		"FuzzParseSigned":   {msg, msgES, msg[:len(msg)/2], append([]byte{0xd2, 0x9f}, msg[2:]...), {0xd2, 0x84, 0x40, 0xa0, 0x41, 0x00, 0x41, 0x00}},
		"FuzzOpen":          {payload, otherPayload, payload[:len(payload)-1], bytes.Replace(payload, []byte{0x38, 0x18}, []byte{0x38, 0x19}, 1), {0xd8, 0x60, 0x80}},
		"FuzzDecodeBatch":   {plain, plainBP, plain[:len(plain)-2], append([]byte{0xa6, 0x01, 0x68}, append([]byte("fuzz-dev"), plain[1:]...)...)},
		"FuzzDecodeReading": {stored, storedSimple, stored[:5]},
	}
}

// The committed seeds must still reach the end of the pipeline with the
// fixed keys, or the fuzzers would only ever explore the refusals.
func TestFuzzSeedsReachOpen(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseSigned", "seed-00"))
	if err != nil {
		t.Fatal(err)
	}
	msg := corpusBytes(t, data)
	s, err := ParseSigned(msg, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(fuzzDeviceKey.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(s, fuzzHospitalKey); err != nil {
		t.Fatal(err)
	}
}

func corpusBytes(t *testing.T, file []byte) []byte {
	t.Helper()
	const prefix = "go test fuzz v1\n[]byte("
	s := strings.TrimSuffix(strings.TrimPrefix(string(file), prefix), ")\n")
	out, err := strconv.Unquote(s)
	if err != nil {
		t.Fatalf("corpus file: %v", err)
	}
	return []byte(out)
}
