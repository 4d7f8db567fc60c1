package devices_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store/storetest"
)

// fuzzAuthority is a device authority on SQLite with one revoked device,
// one suspended device and one gateway, so its status list has entries.
func fuzzAuthority(f *testing.F) (*devicestest.Hospital, *devices.Authority, []*x509.Certificate) {
	h := devicestest.New(f, storetest.OpenSQLite(f))
	a := h.Authority(f)
	ctx := context.Background()
	p := h.Patient(f)
	var certs []*x509.Certificate
	for _, serial := range []string{"SN-A", "SN-B", "SN-C"} {
		certs = append(certs, devicestest.EnrollDevice(f, a, p.ID, serial, device.KeyP256, nil).Certificate)
	}
	certs = append(certs, devicestest.EnrollDevice(f, a, p.ID, "SN-E", device.KeyEd25519, nil).Certificate)
	if _, err := a.SetStatus(ctx, "SN-B", devices.StatusRevoked, "fuzz seed", "cli:officer"); err != nil {
		f.Fatal(err)
	}
	if _, err := a.SetStatus(ctx, "SN-C", devices.StatusSuspended, "fuzz seed", "cli:officer"); err != nil {
		f.Fatal(err)
	}
	return h, a, certs
}

// caKey is the device CA's private key, derived as the authority derives
// it, so the fuzzer can sign bodies of its own and reach the decoder.
func caKey(f *testing.F, h *devicestest.Hospital, a *devices.Authority) *ecdsa.PrivateKey {
	secret, err := h.Keys.SystemKey(context.Background(), "device-ca")
	if err != nil {
		f.Fatal(err)
	}
	k, err := devices.DeriveP256(secret, "device-ca")
	if err != nil {
		f.Fatal(err)
	}
	if !k.PublicKey.Equal(a.CA().PublicKey) {
		f.Fatal("derived key is not the device CA key")
	}
	return k
}

// statusListDigest is computed here from the documented context string, so
// the property below does not trust the package's own digest.
func statusListDigest(body []byte) []byte {
	h := sha256.New()
	h.Write([]byte("medsec device status list v1\n"))
	h.Write(body)
	return h.Sum(nil)
}

// FuzzOpenStatusList: a status list from the network either is refused
// with ErrStatusListInvalid or was really signed by the device CA over the
// exact bytes given; a list that opens re-encodes to a list that decodes to
// the same entries. With resign, the fuzzer's body is signed by the real
// CA key so the decoder behind the signature check is reached too.
func FuzzOpenStatusList(f *testing.F) {
	h, a, _ := fuzzAuthority(f)
	key := caKey(f, h, a)
	body, sig, err := a.SignedStatusList(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	if _, err := devices.OpenStatusList(body, sig, a.CA()); err != nil {
		f.Fatalf("seed list does not open: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), "revoked", "active!", 1))
	f.Add(body, sig, false)
	f.Add(body, sig, true)
	f.Add(tampered, sig, false)
	f.Add(tampered, sig, true)
	f.Add(body, sig[:len(sig)-1], false)
	f.Add([]byte(`{"revision":1,"issued":"2025-01-01T00:00:00Z","entries":null}`), []byte{}, true)
	f.Add([]byte(`{"entries":[{"serial":"SN-X","status":"bogus","since":"0001-01-01T00:00:00Z"}]}`), []byte{}, true)
	f.Add([]byte(`null`), []byte{0x30, 0x00}, true)
	f.Add([]byte{}, []byte{}, false)
	pub := a.CA().PublicKey.(*ecdsa.PublicKey)
	f.Fuzz(func(t *testing.T, body, sig []byte, resign bool) {
		if resign {
			s, err := ecdsa.SignASN1(rand.Reader, key, statusListDigest(body))
			if err != nil {
				t.Fatal(err)
			}
			sig = s
		}
		l, err := devices.OpenStatusList(body, sig, a.CA())
		if err != nil {
			if !errors.Is(err, devices.ErrStatusListInvalid) {
				t.Fatalf("refusal is not ErrStatusListInvalid: %v", err)
			}
			return
		}
		if !ecdsa.VerifyASN1(pub, statusListDigest(body), sig) {
			t.Fatalf("opened a list the CA did not sign: %q", body)
		}
		checkStatusListRoundTrip(t, l)
	})
}

func checkStatusListRoundTrip(t *testing.T, l devices.StatusList) {
	again, err := json.Marshal(l)
	if err != nil {
		return // a time outside RFC 3339's years cannot be re-encoded; the list still opened as signed
	}
	var back devices.StatusList
	if err := json.Unmarshal(again, &back); err != nil {
		t.Fatalf("re-encoded list does not decode: %v\n%s", err, again)
	}
	if diff := cmp.Diff(l, back); diff != "" {
		t.Fatalf("list changed through re-encoding (-opened +again):\n%s", diff)
	}
}

// FuzzParseCertificatePEM: a certificate file or enrollment reply either is
// refused or yields a certificate that re-parses, from its own DER and from
// its re-encoded PEM, to the same certificate.
func FuzzParseCertificatePEM(f *testing.F) {
	_, a, certs := fuzzAuthority(f)
	f.Add(a.CAPEM())
	for _, c := range certs {
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		f.Add(p)
		f.Add(append(slices.Clone(p), a.CAPEM()...))
		f.Add(p[:len(p)/2])
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: certs[0].RawSubjectPublicKeyInfo}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := devices.ParseCertificatePEM(data)
		if err != nil {
			return
		}
		again, err := devices.ParseCertificatePEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		if err != nil {
			t.Fatalf("re-encoded certificate does not parse: %v", err)
		}
		if !c.Equal(again) || !bytes.Equal(c.RawSubjectPublicKeyInfo, again.RawSubjectPublicKeyInfo) {
			t.Fatalf("certificate changed through re-encoding")
		}
	})
}

// FuzzParseHospitalKeyPEM: the hospital key a device is handed either is
// refused or is a P-256 key that re-encodes (HospitalKeyPEM) and re-parses
// to the same key. Devices encrypt to it with P-256 only, so any other
// curve must be refused at parse time, not at the first reading.
func FuzzParseHospitalKeyPEM(f *testing.F) {
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	good, err := devices.HospitalKeyPEM(p256.PublicKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-10])
	ecdsaP256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, pub := range []any{&ecdsaP256.PublicKey, &p384.PublicKey, x25519.PublicKey(), edPub} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := devices.ParseHospitalKeyPEM(data)
		if err != nil {
			return
		}
		if pub.Curve() != ecdh.P256() {
			t.Fatalf("accepted a hospital key on %v, want P-256 only", pub.Curve())
		}
		again, err := devices.HospitalKeyPEM(pub)
		if err != nil {
			t.Fatalf("accepted key does not re-encode: %v", err)
		}
		back, err := devices.ParseHospitalKeyPEM(again)
		if err != nil || !back.Equal(pub) {
			t.Fatalf("key changed through re-encoding: %v", err)
		}
	})
}

// FuzzParseStatus: a status name from the CLI or the API is one of the
// four statuses, canonical (parsing it again gives itself), or refused with
// ErrBadRequest.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"active", "suspended", "revoked", "lost", " Revoked\n", "LOST", "", "activ", "active\x00", "ſuspended"} {
		f.Add(s)
	}
	known := []devices.Status{devices.StatusActive, devices.StatusSuspended, devices.StatusRevoked, devices.StatusLost}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := devices.ParseStatus(s)
		if err != nil {
			if !errors.Is(err, devices.ErrBadRequest) {
				t.Fatalf("refusal is not ErrBadRequest: %v", err)
			}
			return
		}
		if !slices.Contains(known, st) {
			t.Fatalf("ParseStatus(%q) = %q, not a known status", s, st)
		}
		if again, err := devices.ParseStatus(string(st)); err != nil || again != st {
			t.Fatalf("ParseStatus(%q) = %q, %v; want itself", st, again, err)
		}
	})
}
