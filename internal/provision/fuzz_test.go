package provision_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
)

// fuzzHospital signs the fuzz seeds. Its seed is a public test constant,
// so the committed corpus verifies and reaches the decryption step.
func fuzzHospital(t testing.TB) *lifecycle.Signer {
	s, err := lifecycle.NewSigner("medsec-hospital-fuzz", bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fuzzPackage(t testing.TB, hospital *lifecycle.Signer, to *age.X25519Recipient) []byte {
	c := provision.Content{Package: "pkg_fuzz", From: hospital.Name(), To: "pharmacy-a", Issued: time.Unix(1e9, 0).UTC(),
		Purpose: "TREAT", Form: "identified", Classes: []string{"medication"}, DestroyBy: time.Unix(2e9, 0).UTC(),
		Bundle: json.RawMessage(`{"resourceType":"Bundle","type":"collection","entry":[]}`), Instruction: "destroy"}
	pkg, _, err := provision.Seal(c, to, hospital, time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// FuzzOpenPackage feeds arbitrary files to the recipient's side: it must
// refuse them with a named error, never panic, and never open anything the
// hospital did not seal.
func FuzzOpenPackage(f *testing.F) {
	hospital := fuzzHospital(f)
	id, _ := age.GenerateX25519Identity()
	good := fuzzPackage(f, hospital, id.Recipient())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, file []byte) {
		opened, err := provision.Open(file, hospital.Verifier(), id)
		if err == nil && (opened.Header.ID != "pkg_fuzz" || !bytes.Equal(file, good)) {
			t.Fatalf("opened a package the hospital did not seal: %+v", opened.Header)
		}
		provision.ParseHeader(file)
	})
}

// FuzzParseReceipt feeds arbitrary receipts to the hospital's parser.
func FuzzParseReceipt(f *testing.F) {
	skey, _, _ := note.GenerateKey(rand.Reader, "pharmacy-a")
	signer, _ := note.NewSigner(skey)
	good, _ := note.Sign(&note.Note{Text: "medsec destruction receipt v1\npackage: pkg_x\nsha256: " + fmt.Sprintf("%064x", 1) +
		"\nrecipient: pharmacy-a\nhospital: medsec-hospital-x\ndestroyed: 2026-01-02T03:04:05Z\nmethod: shredded\n"}, signer)
	f.Add(good)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := provision.ParseReceipt(raw)
		if err == nil && (r.Package == "" || r.Destroyed.IsZero() || len(r.SHA256) != 64) {
			t.Fatalf("accepted an incomplete receipt: %+v", r)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus when
// MEDSEC_WRITE_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_SEEDS") == "" {
		t.Skip("set MEDSEC_WRITE_SEEDS=1 to regenerate testdata/fuzz")
	}
	id, _ := age.GenerateX25519Identity()
	pkg := fuzzPackage(t, fuzzHospital(t), id.Recipient())
	header := pkg[:bytes.Index(pkg, []byte("\n\n"))+2]
	seeds := map[string][]byte{"valid-other-recipient": pkg, "header-only": header, "cut-header": pkg[:40],
		"not-a-package": []byte("PK\x03\x04 zip file"), "empty": nil, "long-header": append([]byte("medsec-package/v1\n"), bytes.Repeat([]byte("{"), 5000)...)}
	writeSeeds(t, "FuzzOpenPackage", seeds)
	skey, _, _ := note.GenerateKey(rand.Reader, "pharmacy-a")
	signer, _ := note.NewSigner(skey)
	good, _ := note.Sign(&note.Note{Text: "medsec destruction receipt v1\npackage: pkg_x\nsha256: " + fmt.Sprintf("%064x", 1) +
		"\nrecipient: pharmacy-a\nhospital: medsec-hospital-x\ndestroyed: 2026-01-02T03:04:05Z\nmethod: shredded\n"}, signer)
	writeSeeds(t, "FuzzParseReceipt", map[string][]byte{"valid": good, "unsigned": []byte("medsec destruction receipt v1\npackage: x\n"),
		"bad-date": bytes.Replace(good, []byte("2026-01-02T03:04:05Z"), []byte("yesterday"), 1), "garbage": []byte("\x00\x01")})
}

func writeSeeds(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
