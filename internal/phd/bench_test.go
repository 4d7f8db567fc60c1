package phd

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"
)

// Benchmarks for the costs DESIGN.md budgets: what a device pays to seal,
// what a gateway pays to check (ParseSigned+Verify), what the server pays
// to open, beside the raw signature verification that bounds them.
//
//	go test -run '^$' -bench . -benchmem ./internal/phd/

var benchSizes = []int{1, 32}

func reportMeasurements(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "measurements/s")
}

func BenchmarkSeal(b *testing.B) {
	hospital := newHospitalKey(b)
	for _, alg := range []string{"ES256", "EdDSA"} {
		signer := newSigner(b, "bench-dev", deviceKey(b, alg))
		for _, n := range benchSizes {
			batch := sampleBatch(b, "bench-dev", n)
			b.Run(fmt.Sprintf("%s/batch=%d", alg, n), func(b *testing.B) {
				for b.Loop() {
					if _, err := Seal(batch, signer, hospital.PublicKey()); err != nil {
						b.Fatal(err)
					}
				}
				reportMeasurements(b, n)
			})
		}
	}
}

func BenchmarkParseVerify(b *testing.B) {
	hospital := newHospitalKey(b)
	for _, alg := range []string{"ES256", "EdDSA"} {
		key := deviceKey(b, alg)
		signer := newSigner(b, "bench-dev", key)
		for _, n := range benchSizes {
			msg := mustSeal(b, sampleBatch(b, "bench-dev", n), signer, hospital.PublicKey())
			b.Run(fmt.Sprintf("%s/batch=%d", alg, n), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					s, err := ParseSigned(msg, DefaultLimits())
					if err != nil {
						b.Fatal(err)
					}
					if err := s.Verify(key.Public()); err != nil {
						b.Fatal(err)
					}
				}
				reportMeasurements(b, n)
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	hospital := newHospitalKey(b)
	key := deviceKey(b, "EdDSA")
	signer := newSigner(b, "bench-dev", key)
	for _, n := range benchSizes {
		s := mustParse(b, mustSeal(b, sampleBatch(b, "bench-dev", n), signer, hospital.PublicKey()))
		if err := s.Verify(key.Public()); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(s, hospital); err != nil {
					b.Fatal(err)
				}
			}
			reportMeasurements(b, n)
		})
	}
}

// BenchmarkRawVerify is the ceiling: the bare signature check over a
// Sig_structure-sized message, without COSE or CBOR.
func BenchmarkRawVerify(b *testing.B) {
	msg := make([]byte, 512)
	rand.Read(msg)
	b.Run("ECDSA-P256", func(b *testing.B) {
		k := deviceKey(b, "ES256").(*ecdsa.PrivateKey)
		digest := sha256.Sum256(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			d := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
				b.Fatal("verify failed")
			}
		}
	})
	b.Run("Ed25519", func(b *testing.B) {
		k := deviceKey(b, "EdDSA").(ed25519.PrivateKey)
		sig, err := k.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			b.Fatal(err)
		}
		pub := k.Public().(ed25519.PublicKey)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify failed")
			}
		}
	})
}

// BenchmarkServerPerMeasurement: what the server does per reading after
// Open (validate, encode for storage) and per read (render FHIR JSON).
func BenchmarkServerPerMeasurement(b *testing.B) {
	batch := sampleBatch(b, "bench-dev", 32)
	b.Run("Assess/batch=32", func(b *testing.B) {
		for b.Loop() {
			Assess(&batch, testNow, DefaultLimits())
		}
		reportMeasurements(b, 32)
	})
	a := Assess(&batch, testNow, DefaultLimits())
	b.Run("EncodeReading", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeReading(a.Readings[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RenderObservationJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := RenderObservationJSON(a.Readings[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
