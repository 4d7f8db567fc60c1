package provision_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/provision"
)

func recipientKeys(f *testing.F) provision.RecipientKeys {
	k, err := provision.GenerateRecipientKeys("pharmacy-a")
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzParseIdentities: an identity file either is refused with ErrInvalid
// or holds identities that each re-encode to themselves and open what is
// sealed to their own recipient.
func FuzzParseIdentities(f *testing.F) {
	k := recipientKeys(f)
	pq, _ := age.GenerateHybridIdentity()
	for _, s := range []string{
		k.AgeIdentity,
		"# created for pharmacy-a\n" + k.AgeIdentity + "\n",
		k.AgeIdentity + "\r\n" + pq.String() + "\n",
		strings.ToLower(k.AgeIdentity),
		k.AgeIdentity[:len(k.AgeIdentity)-1],
		" " + k.AgeIdentity,
		k.AgeRecipient,
		k.SigningKey,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids, err := provision.ParseIdentities(text)
		if err != nil {
			if !errors.Is(err, provision.ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatal("accepted a file with no identity")
		}
		for _, id := range ids {
			checkIdentity(t, id)
		}
	})
}

// checkIdentity re-parses id's own encoding and opens a file sealed to its
// recipient.
func checkIdentity(t *testing.T, id age.Identity) {
	var enc string
	var to age.Recipient
	switch i := id.(type) {
	case *age.X25519Identity:
		enc, to = i.String(), i.Recipient()
	case *age.HybridIdentity:
		enc, to = i.String(), i.Recipient()
	default:
		t.Fatalf("accepted an identity of type %T", id)
	}
	again, err := provision.ParseIdentities(enc)
	if err != nil || len(again) != 1 {
		t.Fatalf("identity's own encoding does not parse: %v", err)
	}
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, to)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "probe")
	w.Close()
	r, err := age.Decrypt(&sealed, again...)
	if err != nil {
		t.Fatalf("identity does not open a file sealed to its recipient: %v", err)
	}
	if got, _ := io.ReadAll(r); string(got) != "probe" {
		t.Fatalf("opened %q, sealed %q", got, "probe")
	}
}

// FuzzParseVerifierKey: a public key handed over by a recipient (or the
// hospital's) either is refused with ErrInvalid or names itself as its text
// says, and verifies a note only when it is the key that signed it.
func FuzzParseVerifierKey(f *testing.F) {
	k := recipientKeys(f)
	other := recipientKeys(f)
	signer, err := provision.ParseSigningKey(k.SigningKey)
	if err != nil {
		f.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: "medsec destruction receipt v1\npackage: pkg_x\n"}, signer)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{k.ReceiptKey, k.ReceiptKey + "\n", other.ReceiptKey, strings.Replace(k.ReceiptKey, "+", "++", 1),
		k.ReceiptKey[:len(k.ReceiptKey)-4], "pharmacy-a+00000000+AQ==", k.SigningKey, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, err := provision.ParseVerifierKey(text)
		if err != nil {
			if !errors.Is(err, provision.ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		if !strings.HasPrefix(strings.TrimSpace(text), v.Name()+"+") {
			t.Fatalf("key %q names itself %q", text, v.Name())
		}
		_, err = note.Open(signed, note.VerifierList(v))
		if mine := sameVerifierKey(text, k.ReceiptKey); (err == nil) != mine {
			t.Fatalf("key %q: open note signed by %s: %v", text, k.ReceiptKey, err)
		}
	})
}

// sameVerifierKey reports whether two name+hash+key texts hold the same
// name, hash and key bytes, however the hash's hex digits are cased.
func sameVerifierKey(a, b string) bool {
	fa, fb := strings.SplitN(strings.TrimSpace(a), "+", 3), strings.SplitN(b, "+", 3)
	if len(fa) != 3 || len(fb) != 3 || fa[0] != fb[0] || !strings.EqualFold(fa[1], fb[1]) {
		return false
	}
	ka, erra := base64.StdEncoding.DecodeString(fa[2])
	kb, errb := base64.StdEncoding.DecodeString(fb[2])
	return erra == nil && errb == nil && bytes.Equal(ka, kb)
}

// FuzzParseSigningKey: a receipt-signing key either is refused with
// ErrInvalid or signs notes that its own public half (derived here from
// the key's seed) verifies under the same name and key hash.
func FuzzParseSigningKey(f *testing.F) {
	k := recipientKeys(f)
	for _, s := range []string{k.SigningKey, k.SigningKey + "\r\n", " " + k.SigningKey, k.SigningKey[:len(k.SigningKey)-4],
		strings.Replace(k.SigningKey, "pharmacy-a", "pharmacy-b", 1), "PRIVATE+KEY+x+00000000+AQ==", k.ReceiptKey, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := provision.ParseSigningKey(text)
		if err != nil {
			if !errors.Is(err, provision.ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		v := publicHalf(t, text, s.Name())
		if v.KeyHash() != s.KeyHash() {
			t.Fatalf("signer key hash %08x, its public half %08x", s.KeyHash(), v.KeyHash())
		}
		signed, err := note.Sign(&note.Note{Text: "probe\n"}, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			t.Fatalf("the key's own public half does not verify its signature: %v", err)
		}
	})
}

// publicHalf derives the verifier of an accepted PRIVATE+KEY+name+hash+key.
func publicHalf(t *testing.T, text, name string) note.Verifier {
	fields := strings.SplitN(strings.TrimSpace(text), "+", 5) // PRIVATE, KEY, name, hash, key (base64 may hold '+')
	key, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(key) != 1+ed25519.SeedSize {
		t.Fatalf("accepted a key that is not an Ed25519 seed: %q", text)
	}
	vkey, err := note.NewEd25519VerifierKey(name, ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
