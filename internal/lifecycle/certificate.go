package lifecycle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// certificateHeader opens the text of every destruction certificate.
const certificateHeader = "medsec destruction certificate v1\n"

// Certificate is the signed record of one retention run: what was
// destroyed, how much, under which rule, when and by whom. It holds no PHI:
// patients are counted, and only a digest of their pseudonyms lets an
// auditor who knows a pseudonym check that it was among them.
type Certificate struct {
	ID       string    `json:"certificate"`
	Hospital string    `json:"hospital"` // the signing key's name
	Schedule string    `json:"schedule"`
	RunAt    time.Time `json:"run_at"`    // the run's clock
	SignedAt time.Time `json:"signed_at"` // this machine's clock
	By       string    `json:"by"`
	Operator string    `json:"operator,omitempty"`

	Destroyed []CertItem `json:"destroyed"`
	Held      []HeldItem `json:"held,omitempty"`
	// RefusedByPolicy counts patients the access policy would not let the
	// run destroy (each refusal is in the audit log).
	RefusedByPolicy int      `json:"refused_by_policy,omitempty"`
	Notes           []string `json:"notes,omitempty"`

	Records        int    `json:"records"`
	Patients       int    `json:"patients"`
	PatientsDigest string `json:"patients_sha256"`
}

// CertItem is what one rule destroyed.
type CertItem struct {
	Rule   string    `json:"rule"`
	Class  string    `json:"class"`
	Basis  string    `json:"basis"`
	Keep   string    `json:"keep"`
	Cutoff time.Time `json:"effective_before"`
	// Method is crypto-shredding (a whole patient: the data key destroyed)
	// or sealed-row deletion (part of a record).
	Method   string `json:"method"`
	Records  int    `json:"records"`
	Patients int    `json:"patients"`
}

// HeldItem is expired data a legal hold kept.
type HeldItem struct {
	Class    string `json:"class"`
	Hold     string `json:"hold"`
	Reason   string `json:"reason"`
	Records  int    `json:"records"`
	Patients int    `json:"patients"`
}

// Methods of destruction.
const (
	MethodShred  = "crypto-shredding"
	MethodDelete = "sealed-row deletion"
)

// pseudonymDigest commits to the set of patients a run touched.
func pseudonymDigest(pseudonyms map[string]bool) string {
	list := make([]string, 0, len(pseudonyms))
	for p := range pseudonyms {
		list = append(list, p)
	}
	slices.Sort(list)
	sum := sha256.Sum256([]byte(strings.Join(list, "\n")))
	return hex.EncodeToString(sum[:])
}

// signCertificate renders c as a signed note.
func signCertificate(c Certificate, s note.Signer) ([]byte, error) {
	body, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode certificate: %w", err)
	}
	return note.Sign(&note.Note{Text: certificateHeader + string(body) + "\n"}, s)
}

// VerifyCertificate checks a signed certificate against the hospital's
// verifier key and returns it.
func VerifyCertificate(signed []byte, verifierKey string) (Certificate, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return Certificate{}, fmt.Errorf("hospital key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Certificate{}, fmt.Errorf("%w: %s", ErrBadCertificate, noteProblem(err, v.Name()))
	}
	return parseCertificate(n.Text, v.Name())
}

func noteProblem(err error, keyName string) string {
	var inv *note.InvalidSignatureError
	var unv *note.UnverifiedNoteError
	switch {
	case errors.As(err, &inv):
		return "the signature does not match the text: it was changed after signing"
	case errors.As(err, &unv):
		return "it is not signed by " + keyName
	}
	return "it is not a signed certificate (" + err.Error() + ")"
}

func parseCertificate(text, keyName string) (Certificate, error) {
	body, ok := strings.CutPrefix(text, certificateHeader)
	if !ok {
		return Certificate{}, fmt.Errorf("%w: not a medsec destruction certificate", ErrBadCertificate)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	var c Certificate
	if err := dec.Decode(&c); err != nil {
		return Certificate{}, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	if c.Hospital != keyName {
		return Certificate{}, fmt.Errorf("%w: it names hospital %q but is signed by %q", ErrBadCertificate, c.Hospital, keyName)
	}
	return c, nil
}
