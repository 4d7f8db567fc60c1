// Package benchref measures this machine's raw cryptographic limits —
// SHA-256, AES-256-GCM and signature verification — in the same run as a
// medsec benchmark, so that every figure can be reported as a ratio to the
// hardware and travels across machines. It serves `medsec bench` and
// docs/BENCHMARKS.md.
package benchref

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"time"
)

// Limits are the raw single-goroutine rates of this machine.
type Limits struct {
	SHA256MBps          float64 `json:"sha256_mb_per_s"`
	AESGCM256Bps        float64 `json:"aesgcm_seal_256b_per_s"`
	Ed25519VerifyPerS   float64 `json:"ed25519_verify_per_s"`
	ECDSAP256VerifyPerS float64 `json:"ecdsa_p256_verify_per_s"`
}

// Measure runs each reference loop for about d.
func Measure(d time.Duration) Limits {
	return Limits{
		SHA256MBps:          rate(d, sha256Loop()) * 1 / (1 << 20) * (1 << 16),
		AESGCM256Bps:        rate(d, gcmLoop()),
		Ed25519VerifyPerS:   rate(d, ed25519Loop()),
		ECDSAP256VerifyPerS: rate(d, ecdsaLoop()),
	}
}

// rate calls fn repeatedly for about d and returns calls per second.
func rate(d time.Duration, fn func()) float64 {
	fn() // warm up
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for range 16 {
			fn()
		}
		n += 16
	}
	return float64(n) / time.Since(start).Seconds()
}

// sha256Loop hashes 64 KiB per call.
func sha256Loop() func() {
	buf := make([]byte, 1<<16)
	return func() { sha256.Sum256(buf) }
}

func gcmLoop() func() {
	block, _ := aes.NewCipher(make([]byte, 32))
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	pt := make([]byte, 256)
	out := make([]byte, 0, 256+16)
	return func() { gcm.Seal(out[:0], nonce, pt, nil) }
}

func ed25519Loop() func() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 200)
	sig := ed25519.Sign(priv, msg)
	return func() { ed25519.Verify(pub, msg, sig) }
}

func ecdsaLoop() func() {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("medsec"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	return func() { ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) }
}
