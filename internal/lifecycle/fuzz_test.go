package lifecycle

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzSigner's seed is a public test constant, so the committed corpus
// verifies and reaches the certificate parser.
func fuzzSigner(t testing.TB) *Signer {
	s, err := NewSigner("medsec-hospital-fuzz", bytes.Repeat([]byte{0x33}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fuzzCertificate(t testing.TB) []byte {
	c := Certificate{ID: "cert_fuzz", Hospital: "medsec-hospital-fuzz", Schedule: "kr", RunAt: time.Unix(1e9, 0).UTC(),
		Destroyed: []CertItem{{Rule: "kr/note", Class: "note", Basis: "law", Keep: "10y", Method: MethodDelete, Records: 3, Patients: 1}},
		Records:   3, Patients: 1, PatientsDigest: pseudonymDigest(map[string]bool{"P-x": true})}
	signed, err := signCertificate(c, fuzzSigner(t))
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// FuzzVerifyCertificate feeds arbitrary certificates to the auditor's
// check: refused with ErrBadCertificate unless signed by the key.
func FuzzVerifyCertificate(f *testing.F) {
	s := fuzzSigner(f)
	f.Add(fuzzCertificate(f))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := VerifyCertificate(raw, s.VerifierKey())
		if err == nil && c.Hospital != s.Name() {
			t.Fatalf("verified a certificate naming %q", c.Hospital)
		}
	})
}

// FuzzParseSchedule feeds arbitrary YAML to the schedule parser: a
// schedule it accepts must validate and hold positive periods.
func FuzzParseSchedule(f *testing.F) {
	for _, name := range Profiles() {
		_, raw, _ := Profile(name)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSchedule(raw)
		if err != nil {
			return
		}
		if s.Validate() != nil {
			t.Fatal("accepted a schedule that does not validate")
		}
		for _, r := range s.Rules {
			if !r.Keep.Before(time.Unix(4e9, 0)).Before(time.Unix(4e9, 0)) {
				t.Fatalf("rule %s keeps %s, not a positive period", r.Class, r.Keep)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus when
// MEDSEC_WRITE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_SEEDS") == "" {
		t.Skip("set MEDSEC_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	good := fuzzCertificate(t)
	writeSeeds(t, "FuzzVerifyCertificate", map[string][]byte{"valid": good,
		"changed":  bytes.Replace(good, []byte(`"records": 3`), []byte(`"records": 4`), 1),
		"unsigned": []byte(certificateHeader + "{}\n"), "garbage": []byte("\xff\xfe")})
	_, kr, _ := Profile("kr")
	writeSeeds(t, "FuzzParseSchedule", map[string][]byte{"kr": kr, "empty": nil,
		"huge-period": []byte("name: x\nrules:\n  - class: note\n    keep: 99999y99999mo\n    basis: b\n"),
		"alias-bomb":  []byte("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n")})
}

func writeSeeds(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
