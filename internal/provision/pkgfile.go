package provision

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// A package file is what the hospital sends to a recipient:
//
//	medsec-package/v1
//	{"id":…,"from":…,"from_hash":…,"to":…,"to_key":…,"created":…,"size":…,"sha256":…}
//	<base64 Ed25519 signature of the two lines above, by the hospital key>
//	<blank line>
//	<age ciphertext of the content, to the recipient's X25519 key>
//
// The header names sender and recipient and commits to the ciphertext's
// length and SHA-256, so a changed byte, a cut file or another sender is
// found, and named, before anything is decrypted. Inside, the content (the
// FHIR Bundle and what it was sent for) is signed again, so the recipient
// can show a third party what the hospital sent.

const (
	packageMagic   = "medsec-package/v1\n"
	contentContext = "medsec-package-content/v1\n"
	maxHeaderLine  = 4096
	maxSigLine     = 200
	// MaxPackageSize bounds a package file (and what Open reads).
	MaxPackageSize = 256 << 20
)

// Header is the signed, readable part of a package.
type Header struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`      // the hospital key's name
	FromHash string    `json:"from_hash"` // its note key hash, 8 hex digits
	To       string    `json:"to"`        // the recipient's id
	ToKey    string    `json:"to_key"`    // the age X25519 recipient it is encrypted to
	Created  time.Time `json:"created"`
	Size     int64     `json:"size"`   // ciphertext bytes
	SHA256   string    `json:"sha256"` // of the ciphertext, hex
}

// Content is the signed, encrypted part: the bundle and the terms it was
// sent under.
type Content struct {
	Package     string          `json:"package"`
	From        string          `json:"from"`
	To          string          `json:"to"`
	Issued      time.Time       `json:"issued"`
	Purpose     string          `json:"purpose"`
	Basis       string          `json:"basis,omitempty"`
	Form        string          `json:"form"`
	Classes     []string        `json:"classes"`
	DestroyBy   time.Time       `json:"destroy_by"`
	Bundle      json.RawMessage `json:"bundle"`
	Withheld    int             `json:"withheld,omitempty"`
	Instruction string          `json:"instruction"`
}

// Opened is a package that verified and decrypted.
type Opened struct {
	Header  Header
	Content Content
	// Digest is the SHA-256 of the package file, as the ledger and
	// receipts name it.
	Digest string
}

// Seal signs content with the hospital key, encrypts it to the recipient
// and wraps it in a signed header. It returns the package file.
func Seal(c Content, to *age.X25519Recipient, hospital note.Signer, created time.Time) ([]byte, Header, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, Header{}, fmt.Errorf("encode package content: %w", err)
	}
	sig, err := hospital.Sign(append([]byte(contentContext), body...))
	if err != nil {
		return nil, Header{}, fmt.Errorf("sign package content: %w", err)
	}
	plain := append(append(body, '\n'), base64.StdEncoding.EncodeToString(sig)+"\n"...)
	var ct bytes.Buffer
	w, err := age.Encrypt(&ct, to)
	if err != nil {
		return nil, Header{}, fmt.Errorf("encrypt package: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, Header{}, fmt.Errorf("encrypt package: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, Header{}, fmt.Errorf("encrypt package: %w", err)
	}
	sum := sha256.Sum256(ct.Bytes())
	h := Header{ID: c.Package, From: hospital.Name(), FromHash: fmt.Sprintf("%08x", hospital.KeyHash()), To: c.To,
		ToKey: to.String(), Created: created.UTC(), Size: int64(ct.Len()), SHA256: hex.EncodeToString(sum[:])}
	return frame(h, ct.Bytes(), hospital)
}

func frame(h Header, ct []byte, hospital note.Signer) ([]byte, Header, error) {
	line, err := json.Marshal(h)
	if err != nil {
		return nil, Header{}, fmt.Errorf("encode package header: %w", err)
	}
	signed := append([]byte(packageMagic), append(line, '\n')...)
	sig, err := hospital.Sign(signed)
	if err != nil {
		return nil, Header{}, fmt.Errorf("sign package header: %w", err)
	}
	out := make([]byte, 0, len(signed)+100+len(ct))
	out = append(out, signed...)
	out = append(out, base64.StdEncoding.EncodeToString(sig)+"\n\n"...)
	return append(out, ct...), h, nil
}

// frameParts are the pieces of a package file, unverified.
type frameParts struct {
	signed []byte // magic + header line
	header Header
	sig    []byte
	ct     []byte
}

// ParseHeader reads a package's header without verifying anything; use
// Open to trust it. Errors wrap ErrTruncated or ErrMalformed.
func ParseHeader(file []byte) (Header, error) {
	p, err := parseFrame(file)
	return p.header, err
}

func parseFrame(file []byte) (frameParts, error) {
	if len(file) > MaxPackageSize {
		return frameParts{}, fmt.Errorf("%w: %d bytes is more than the %d a package may hold", ErrMalformed, len(file), MaxPackageSize)
	}
	if !bytes.HasPrefix(file, []byte(packageMagic)) {
		if bytes.HasPrefix([]byte(packageMagic), file) {
			return frameParts{}, fmt.Errorf("%w: the file ends inside its first line", ErrTruncated)
		}
		return frameParts{}, fmt.Errorf("%w: not a medsec package (no %q line)", ErrMalformed, strings.TrimSpace(packageMagic))
	}
	rest := file[len(packageMagic):]
	line, rest, err := cutLine(rest, maxHeaderLine, "header")
	if err != nil {
		return frameParts{}, err
	}
	p := frameParts{signed: file[:len(packageMagic)+len(line)+1]}
	if err := decodeHeader(line, &p.header); err != nil {
		return frameParts{}, err
	}
	sigLine, rest, err := cutLine(rest, maxSigLine, "signature")
	if err != nil {
		return frameParts{}, err
	}
	if p.sig, err = base64.StdEncoding.Strict().DecodeString(string(sigLine)); err != nil || len(p.sig) != 64 {
		return frameParts{}, fmt.Errorf("%w: the signature line is not a base64 Ed25519 signature", ErrTampered)
	}
	if len(rest) == 0 {
		return frameParts{}, fmt.Errorf("%w: the file ends after the signature; the sealed content is missing", ErrTruncated)
	}
	if rest[0] != '\n' {
		return frameParts{}, fmt.Errorf("%w: no blank line between the signature and the sealed content", ErrTampered)
	}
	p.ct = rest[1:]
	return p, nil
}

// cutLine returns the next line of at most max bytes and what follows it.
func cutLine(b []byte, max int, what string) ([]byte, []byte, error) {
	i := bytes.IndexByte(b, '\n')
	switch {
	case i < 0 && len(b) <= max:
		return nil, nil, fmt.Errorf("%w: the file ends inside the %s line", ErrTruncated, what)
	case i < 0 || i > max:
		return nil, nil, fmt.Errorf("%w: the %s line is longer than %d bytes", ErrMalformed, what, max)
	}
	return b[:i], b[i+1:], nil
}

func decodeHeader(line []byte, h *Header) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(h); err != nil {
		return fmt.Errorf("%w: the header is not valid JSON (%v)", ErrTampered, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: text after the header", ErrTampered)
	}
	if h.ID == "" || h.From == "" || h.To == "" || h.ToKey == "" || h.Size <= 0 || len(h.SHA256) != 64 {
		return fmt.Errorf("%w: the header lacks id, sender, recipient, size or digest", ErrTampered)
	}
	return nil
}

// Open verifies a package against the hospital's verifier key and decrypts
// it with the recipient's identities. Every problem is named: ErrWrongSender
// (another key signed it), ErrTampered (a byte changed), ErrTruncated (the
// file was cut), ErrNotForYou (encrypted to someone else).
func Open(file []byte, hospital note.Verifier, identities ...age.Identity) (Opened, error) {
	p, err := parseFrame(file)
	if err != nil {
		return Opened{}, err
	}
	if err := p.verify(hospital); err != nil {
		return Opened{}, err
	}
	if err := forMe(p.header, identities); err != nil {
		return Opened{}, err
	}
	c, err := decryptContent(p, hospital, identities)
	if err != nil {
		return Opened{}, err
	}
	sum := sha256.Sum256(file)
	return Opened{Header: p.header, Content: c, Digest: hex.EncodeToString(sum[:])}, nil
}

// verify checks the header signature, then the ciphertext against the
// header's length and digest.
func (p frameParts) verify(hospital note.Verifier) error {
	h := p.header
	if !hospital.Verify(p.signed, p.sig) {
		if h.From != hospital.Name() || h.FromHash != fmt.Sprintf("%08x", hospital.KeyHash()) {
			return fmt.Errorf("%w: the package says it is from %s+%s, not from the hospital key %s+%08x you trust",
				ErrWrongSender, h.From, h.FromHash, hospital.Name(), hospital.KeyHash())
		}
		return fmt.Errorf("%w: the header's signature does not verify: the header or signature was changed", ErrTampered)
	}
	switch n := int64(len(p.ct)); {
	case n < h.Size:
		return fmt.Errorf("%w: the sealed content has %d of its %d bytes", ErrTruncated, n, h.Size)
	case n > h.Size:
		return fmt.Errorf("%w: %d bytes were added after the sealed content", ErrTampered, n-h.Size)
	}
	sum := sha256.Sum256(p.ct)
	if hex.EncodeToString(sum[:]) != h.SHA256 {
		return fmt.Errorf("%w: the sealed content's SHA-256 differs from the signed header's: the content was changed", ErrTampered)
	}
	return nil
}

func forMe(h Header, identities []age.Identity) error {
	for _, id := range identities {
		if x, ok := id.(*age.X25519Identity); ok && x.Recipient().String() == h.ToKey {
			return nil
		}
	}
	return fmt.Errorf("%w: it is encrypted to %s (recipient %q), which is not the identity given", ErrNotForYou, h.ToKey, h.To)
}

func decryptContent(p frameParts, hospital note.Verifier, identities []age.Identity) (Content, error) {
	r, err := age.Decrypt(bytes.NewReader(p.ct), identities...)
	if err != nil {
		return Content{}, fmt.Errorf("%w: the sealed content does not decrypt (%v)", ErrTampered, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxPackageSize))
	if err != nil {
		return Content{}, fmt.Errorf("%w: the sealed content does not decrypt (%v)", ErrTampered, err)
	}
	body, sigLine, ok := bytes.Cut(bytes.TrimSuffix(plain, []byte("\n")), []byte("\n"))
	sig, err := base64.StdEncoding.Strict().DecodeString(string(sigLine))
	if !ok || err != nil || !hospital.Verify(append([]byte(contentContext), body...), sig) {
		return Content{}, fmt.Errorf("%w: the content's own signature does not verify", ErrTampered)
	}
	var c Content
	if err := json.Unmarshal(body, &c); err != nil {
		return Content{}, fmt.Errorf("%w: the content is not valid JSON (%v)", ErrTampered, err)
	}
	if c.Package != p.header.ID || c.To != p.header.To || c.From != p.header.From {
		return Content{}, fmt.Errorf("%w: the content belongs to package %s for %s, the header to %s for %s", ErrTampered, c.Package, c.To, p.header.ID, p.header.To)
	}
	return c, nil
}
