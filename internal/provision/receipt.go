package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// A destruction receipt is a note (golang.org/x/mod/sumdb/note) signed by
// the recipient's receipt key:
//
//	medsec destruction receipt v1
//	package: pkg_…
//	sha256: <hex SHA-256 of the package file>
//	recipient: <recipient id>
//	hospital: <hospital key name>
//	destroyed: <RFC 3339 time>
//	method: <how it was destroyed, in words>
//
//	— <recipient id> <signature>

const receiptHeader = "medsec destruction receipt v1"

// maxReceipt bounds a receipt file.
const maxReceipt = 8192

// receiptFields are the receipt's lines in order.
var receiptFields = []string{"package", "sha256", "recipient", "hospital", "destroyed", "method"}

// Receipt is a recipient's statement that it destroyed a package.
type Receipt struct {
	Package   string
	SHA256    string
	Recipient string
	Hospital  string
	Destroyed time.Time
	Method    string
}

// MakeReceipt is the recipient's side: for the package file it received
// (and can open with identities), it signs a receipt saying it destroyed it
// at destroyed, by method.
func MakeReceipt(pkg []byte, signer note.Signer, method string, destroyed time.Time, identities ...age.Identity) ([]byte, error) {
	h, err := ParseHeader(pkg)
	if err != nil {
		return nil, err
	}
	if err := forMe(h, identities); err != nil {
		return nil, err
	}
	if signer.Name() != h.To {
		return nil, fmt.Errorf("%w: the signing key is named %q but the package went to %q", ErrInvalid, signer.Name(), h.To)
	}
	sum := sha256.Sum256(pkg)
	r := Receipt{Package: h.ID, SHA256: hex.EncodeToString(sum[:]), Recipient: h.To, Hospital: h.From, Destroyed: destroyed.UTC(), Method: method}
	if err := r.check(); err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: r.text()}, signer)
}

func (r Receipt) text() string {
	var b strings.Builder
	b.WriteString(receiptHeader + "\n")
	for _, f := range receiptFields {
		b.WriteString(f + ": " + r.field(f) + "\n")
	}
	return b.String()
}

func (r *Receipt) field(name string) string {
	switch name {
	case "package":
		return r.Package
	case "sha256":
		return r.SHA256
	case "recipient":
		return r.Recipient
	case "hospital":
		return r.Hospital
	case "destroyed":
		return r.Destroyed.UTC().Format(time.RFC3339)
	}
	return r.Method
}

func (r *Receipt) set(name, v string) error {
	switch name {
	case "package":
		r.Package = v
	case "sha256":
		r.SHA256 = v
	case "recipient":
		r.Recipient = v
	case "hospital":
		r.Hospital = v
	case "destroyed":
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("destroyed: not an RFC 3339 time")
		}
		r.Destroyed = t
	default:
		r.Method = v
	}
	return nil
}

// check refuses values a receipt line cannot carry.
func (r Receipt) check() error {
	if len(r.SHA256) != 64 || strings.Trim(r.SHA256, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: sha256 must be 64 lower-case hex digits", ErrBadReceipt)
	}
	for _, f := range receiptFields {
		v := r.field(f)
		if v == "" || len(v) > 500 || strings.ContainsFunc(v, isControl) {
			return fmt.Errorf("%w: %s must be 1–500 printable characters", ErrBadReceipt, f)
		}
	}
	return nil
}

// ParseReceipt reads a receipt's text without checking its signature (the
// hospital needs the package id to know whose key to check it with). Use
// Service.ImportReceipt to trust one.
func ParseReceipt(signed []byte) (Receipt, error) {
	if len(signed) > maxReceipt {
		return Receipt{}, fmt.Errorf("%w: %d bytes is too long for a receipt", ErrMalformed, len(signed))
	}
	_, err := note.Open(signed, nil)
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		return Receipt{}, fmt.Errorf("%w: not a signed receipt (%v)", ErrMalformed, err)
	}
	return parseReceiptText(unv.Note.Text)
}

func parseReceiptText(text string) (Receipt, error) {
	if !utf8.ValidString(text) {
		return Receipt{}, fmt.Errorf("%w: not UTF-8 text", ErrMalformed)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(receiptFields)+1 || lines[0] != receiptHeader {
		return Receipt{}, fmt.Errorf("%w: not a medsec destruction receipt (%d lines, first %q)", ErrMalformed, len(lines), truncate(lines[0], 40))
	}
	var r Receipt
	for i, f := range receiptFields {
		v, ok := strings.CutPrefix(lines[i+1], f+": ")
		if !ok {
			return Receipt{}, fmt.Errorf("%w: line %d must start with %q", ErrMalformed, i+2, f+": ")
		}
		if err := r.set(f, v); err != nil {
			return Receipt{}, fmt.Errorf("%w: line %d: %v", ErrMalformed, i+2, err)
		}
	}
	return r, r.check()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
