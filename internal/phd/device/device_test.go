package device

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/medsec/medsec/internal/phd"
)

var now = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func TestKeyPEMRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			key, err := GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "device.key")
			if err := SaveKey(path, key); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("key file mode = %o, want 600", perm)
			}
			got, err := LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			if !samePublic(got.Public(), key.Public()) {
				t.Errorf("loaded key differs from the saved one")
			}
		})
	}
	if _, err := GenerateKey("rsa"); err == nil {
		t.Errorf("GenerateKey(rsa) succeeded")
	}
}

func TestParseKeyPEMRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	for name, data := range map[string][]byte{
		"garbage": []byte("-----BEGIN NOTHING-----"),
		"P-384":   pemBlock(der),
		"not DER": pemBlock([]byte{1, 2, 3}),
	} {
		if _, err := ParseKeyPEM(data); err == nil {
			t.Errorf("ParseKeyPEM(%s) accepted it", name)
		}
	}
}

func samePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func pemBlock(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestCSR(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			key, _ := GenerateKey(kt)
			der, err := CreateCSR(key, "20150200002A", "HEM-9200T")
			if err != nil {
				t.Fatal(err)
			}
			info, err := ParseCSR(der)
			if err != nil {
				t.Fatal(err)
			}
			if info.Serial != "20150200002A" || info.Model != "HEM-9200T" {
				t.Errorf("CSR says serial %q model %q", info.Serial, info.Model)
			}
			if !samePublic(info.PublicKey, key.Public()) {
				t.Errorf("CSR carries another public key")
			}
			bad := bytes.Clone(der)
			bad[len(bad)-3] ^= 0x01 // inside the signature
			if _, err := ParseCSR(bad); err == nil {
				t.Errorf("ParseCSR accepted a request with a broken signature")
			}
		})
	}
}

func TestCSRRefusesBadLabels(t *testing.T) {
	key, _ := GenerateKey(KeyEd25519)
	for _, tt := range []struct{ serial, model string }{
		{"", "M1"}, {"SN 1", "M1"}, {"SN1", "M/1"}, {"SN1", string(make([]byte, 65))},
	} {
		if _, err := CreateCSR(key, tt.serial, tt.model); err == nil {
			t.Errorf("CreateCSR(%q, %q) succeeded", tt.serial, tt.model)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, err := CreateCSR(p384, "SN1", "M1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCSR(der); err == nil {
		t.Errorf("ParseCSR accepted a P-384 key")
	}
}

func TestCounterSurvivesRestarts(t *testing.T) {
	for _, reserve := range []int{1, 4, DefaultReserve} {
		path := filepath.Join(t.TempDir(), "seq")
		seen := map[uint64]bool{}
		var last uint64
		for run := 0; run < 5; run++ { // each run is a restart (or a crash)
			c, err := OpenCounter(path, reserve)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 7; i++ {
				n, err := c.Next()
				if err != nil {
					t.Fatal(err)
				}
				if seen[n] || n <= last {
					t.Fatalf("reserve %d run %d: got %d after %d (seen before: %v)", reserve, run, n, last, seen[n])
				}
				seen[n], last = true, n
			}
		}
		if reserve == 1 && last != 35 {
			t.Errorf("with reserve 1 the last number is %d, want 35 (no gaps)", last)
		}
	}
}

func TestCounterStartsAtOne(t *testing.T) {
	c, err := OpenCounter(filepath.Join(t.TempDir(), "seq"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Next(); n != 1 {
		t.Errorf("first number = %d, want 1", n)
	}
}

func TestCounterRefusesDamagedState(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"no magic":  "17\n",
		"zero":      counterMagic + "\n0\n",
		"not digit": counterMagic + "\nseventeen\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seq")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenCounter(path, 1)
			if !errors.Is(err, ErrCounterDamaged) {
				t.Errorf("OpenCounter = %v, want ErrCounterDamaged", err)
			}
		})
	}
}

func newAgent(t *testing.T, kt KeyType) (*Agent, *ecdh.PrivateKey, *Counter) {
	t.Helper()
	key, err := GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	hospital, _ := ecdh.P256().GenerateKey(rand.Reader)
	c, err := OpenCounter(filepath.Join(t.TempDir(), "seq"), 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAgent(AgentConfig{DeviceID: "SN-42", Patient: "pt-0042", Key: key, Hospital: hospital.PublicKey(), Counter: c})
	if err != nil {
		t.Fatal(err)
	}
	return a, hospital, c
}

func TestAgentSealsForTheHospital(t *testing.T) {
	for _, kt := range []KeyType{KeyP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			a, hospital, _ := newAgent(t, kt)
			readings := NewGenerator(7, 0).Batch(9, now.Add(-time.Minute), 10*time.Minute)
			for wantSeq := uint64(1); wantSeq <= 3; wantSeq++ {
				msg, hdr, err := a.Seal(readings, now)
				if err != nil {
					t.Fatal(err)
				}
				s, err := phd.ParseSigned(msg, phd.DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(hdr, s.Header()); diff != "" {
					t.Errorf("returned header differs from the signed one (-returned +signed):\n%s", diff)
				}
				if hdr.Seq != wantSeq {
					t.Errorf("seq = %d, want %d", hdr.Seq, wantSeq)
				}
				if err := s.Verify(a.signer.Public()); err != nil {
					t.Fatal(err)
				}
				b, err := phd.Open(s, hospital)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(readings, b.Measurements); diff != "" {
					t.Errorf("readings (-sent +opened):\n%s", diff)
				}
			}
		})
	}
}

func TestAgentRefusesBadReadingBeforeNumbering(t *testing.T) {
	a, _, c := newAgent(t, KeyEd25519)
	bad := []phd.Measurement{{Code: phd.CodeBodyWeight, Unit: "lb", Value: 150, Time: now}}
	if _, _, err := a.Seal(bad, now); phd.ReasonOf(err) != phd.ReasonUnitMismatch {
		t.Fatalf("Seal(weight in lb) = %v, want unit-mismatch", err)
	}
	if n, _ := c.Next(); n != 1 {
		t.Errorf("a refused reading used sequence numbers: next is %d, want 1", n)
	}
}

func TestNewAgentRequiresKeys(t *testing.T) {
	if _, err := NewAgent(AgentConfig{DeviceID: "SN-1", Patient: "pt-1"}); err == nil {
		t.Errorf("NewAgent without keys succeeded")
	}
}

func TestGeneratorIsPlausible(t *testing.T) {
	g := NewGenerator(1, 0)
	for i, m := range g.Batch(900, now, 7*time.Minute) {
		_, flag, err := phd.CheckMeasurement(m, now, phd.DefaultLimits())
		if err != nil {
			t.Fatalf("reading %d (%d): %v", i, m.Code, err)
		}
		if flag != 0 {
			t.Errorf("reading %d (%d) flagged with OutOfRange 0", i, m.Code)
		}
	}
}

func TestGeneratorOutOfRange(t *testing.T) {
	g := NewGenerator(2, 1)
	for i, m := range g.Batch(90, now, time.Minute) {
		_, flag, err := phd.CheckMeasurement(m, now, phd.DefaultLimits())
		if err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
		if flag == 0 {
			t.Errorf("reading %d (%d) not flagged with OutOfRange 1", i, m.Code)
		}
	}
}

func TestGeneratorPerPatient(t *testing.T) {
	if NewBaseline(3) != NewBaseline(3) {
		t.Errorf("the same seed gave two baselines")
	}
	if NewBaseline(3) == NewBaseline(4) {
		t.Errorf("two patients share a baseline")
	}
	a := NewGenerator(5, 0.1).Batch(20, now, time.Minute)
	b := NewGenerator(5, 0.1).Batch(20, now, time.Minute)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different readings:\n%s", diff)
	}
	for i, m := range a[:len(Cycle)] {
		if m.Code != Cycle[i] {
			t.Errorf("reading %d is %d, want %d", i, m.Code, Cycle[i])
		}
	}
}
