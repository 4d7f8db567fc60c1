package dataset

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// File names inside a dataset directory.
const (
	ManifestFile  = "manifest.json"
	SignatureFile = "manifest.sig"
)

// ManifestFormat names the manifest's layout; a reader refuses others.
const ManifestFormat = "medsec-dataset-manifest/1"

// maxManifest bounds what a reader accepts (a manifest is a few KB; the
// spec it carries is limited too).
const maxManifest = 4 << 20

// Manifest is the signed account of a dataset: what it is for, what made
// it, who is in it, how it was protected, what risk remains, and the hash
// of every file. It holds no PHI and no source identifier: the lineage
// itself stays in the hospital, and the manifest commits to it by digest.
type Manifest struct {
	Format  string         `json:"format"`
	Dataset ManifestHead   `json:"dataset"`
	Spec    ManifestSpec   `json:"spec"`
	Policy  ManifestPolicy `json:"policy"`
	Code    ManifestCode   `json:"code"`
	Cohort  CohortCounts   `json:"cohort"`
	Privacy Privacy        `json:"privacy"`
	Risk    RiskFigures    `json:"risk"`
	Text    *TextSummary   `json:"free_text,omitempty"`
	Files   []FileEntry    `json:"files"`
	Lineage LineageNote    `json:"lineage"`
}

// ManifestHead names the dataset.
type ManifestHead struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Purpose     string    `json:"purpose"`
	Hospital    string    `json:"hospital"`
	CreatedBy   string    `json:"created_by"` // staff id
	Created     time.Time `json:"created"`
	Format      string    `json:"format"`
	Rows        int       `json:"rows"`
	Columns     []string  `json:"columns"`
	// LinkedWith is the earlier dataset whose pseudonyms and date shifts
	// this one shares (the spec's link_with); empty when unlinkable.
	LinkedWith string `json:"linked_with,omitempty"`
}

// ManifestSpec is the spec the dataset was made from, verbatim.
type ManifestSpec struct {
	SHA256 string `json:"sha256"`
	YAML   string `json:"yaml"`
}

// ManifestPolicy is the access policy that decided the reads.
type ManifestPolicy struct {
	// SHA256 is the digest of the policy files the hospital runs.
	SHA256 string `json:"sha256"`
	// Decided are the policies that allowed the reads; Flags the flags on
	// those decisions (deidentified-only).
	Decided []string `json:"decided"`
	Flags   []string `json:"flags,omitempty"`
}

// ManifestCode is the medsec build that made the dataset.
type ManifestCode struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
}

// CohortCounts follow the cohort from the query to the released rows.
type CohortCounts struct {
	// Candidates the spec names; Consented those the policy allowed for
	// the purpose; Excluded those left out (no consent, withdrawn since).
	Candidates int `json:"candidates"`
	Consented  int `json:"consented"`
	Excluded   int `json:"excluded"`
	// RowsBefore is the rows taken out; Suppressed those removed to reach
	// the privacy model; Rows and Patients what was released.
	RowsBefore int `json:"rows_before"`
	Suppressed int `json:"suppressed"`
	Rows       int `json:"rows"`
	Patients   int `json:"patients"`
}

// Privacy is the privacy model asked for and what was reached.
type Privacy struct {
	Model          string  `json:"model"`
	K              int     `json:"k"`
	L              int     `json:"l,omitempty"`
	LMode          string  `json:"l_mode,omitempty"`
	T              float64 `json:"t,omitempty"`
	MaxSuppression float64 `json:"max_suppression"`
	Reached        Reached `json:"reached"`
	// PatientsPerClassMin is the fewest distinct patients in a class of
	// the released rows (k holds per patient, not only per row).
	PatientsPerClassMin int      `json:"patients_per_class_min"`
	Levels              []Level  `json:"levels,omitempty"`
	Loss                Loss     `json:"information_loss"`
	Explanation         []string `json:"explanation,omitempty"`
}

// Reached is what the released rows satisfy: the smallest class, the
// fewest distinct sensitive values in a class, the lowest entropy
// diversity (e^H) and the largest earth mover's distance.
type Reached struct {
	K        int     `json:"k"`
	L        int     `json:"l,omitempty"`
	EntropyL float64 `json:"entropy_l,omitempty"`
	T        float64 `json:"t,omitempty"`
}

// Level is the generalization chosen for one quasi-identifier.
type Level struct {
	Column  string `json:"column"`
	Level   int    `json:"level"`
	Height  int    `json:"height"`
	Example string `json:"example,omitempty"`
}

// Loss is what the generalization cost the data.
type Loss struct {
	Discernibility    float64 `json:"discernibility"`
	AvgClassSize      float64 `json:"avg_class_size"`
	CAvg              float64 `json:"c_avg"`
	NonUniformEntropy float64 `json:"non_uniform_entropy_bits"`
	EntropyShare      float64 `json:"entropy_share"`
	Height            int     `json:"height"`
	Precision         float64 `json:"precision"`
}

// RiskFigures are the re-identification risks of the released rows.
type RiskFigures struct {
	Limit         float64 `json:"limit"`
	ProsecutorMax float64 `json:"prosecutor_max"`
	ProsecutorAvg float64 `json:"prosecutor_avg"`
	JournalistMax float64 `json:"journalist_max"`
	JournalistAvg float64 `json:"journalist_avg"`
	Marketer      float64 `json:"marketer"`
	Threshold     float64 `json:"threshold"`
	AtRisk        float64 `json:"at_risk"`
	// PatientMax is 1 / the fewest patients in a class: the prosecutor
	// risk when one patient contributes several rows.
	PatientMax float64 `json:"patient_max"`
}

// TextSummary counts what the free-text redaction found.
type TextSummary struct {
	Mode     string         `json:"mode"`
	Columns  []string       `json:"columns"`
	Cells    int            `json:"cells"`
	Findings map[string]int `json:"findings"`
}

// FileEntry is one data file and its hash.
type FileEntry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	Rows   int    `json:"rows"`
}

// LineageNote says where the lineage is and commits to it.
type LineageNote struct {
	Kept    string `json:"kept"`
	Members int    `json:"members"`
	// SHA256 is the digest of the lineage (row → source records) as kept
	// in the hospital; a re-identification can be checked against it.
	SHA256 string `json:"sha256"`
}

// Encode writes the manifest as indented JSON with a final newline.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseManifest reads a manifest strictly: one JSON object of the known
// layout and format, nothing unknown, nothing after it, file names that
// stay inside the dataset directory.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifest {
		return nil, fmt.Errorf("manifest is %d bytes, more than %d: %w", len(b), maxManifest, ErrTampered)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("read manifest: %v: %w", err, ErrTampered)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read manifest: data after the manifest: %w", ErrTampered)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("read manifest: format %q, want %q: %w", m.Format, ManifestFormat, ErrTampered)
	}
	return &m, checkFiles(m.Files)
}

func checkFiles(files []FileEntry) error {
	if len(files) == 0 {
		return fmt.Errorf("read manifest: no data files listed: %w", ErrTampered)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if !safeName(f.Name) || f.Name == ManifestFile || f.Name == SignatureFile {
			return fmt.Errorf("read manifest: file name %q is not a plain name inside the dataset: %w", f.Name, ErrTampered)
		}
		if seen[f.Name] {
			return fmt.Errorf("read manifest: file %q listed twice: %w", f.Name, ErrTampered)
		}
		seen[f.Name] = true
		if len(f.SHA256) != 64 || f.Bytes < 0 || f.Rows < 0 {
			return fmt.Errorf("read manifest: file %q has no valid hash or size: %w", f.Name, ErrTampered)
		}
	}
	return nil
}

func safeName(n string) bool {
	return n != "" && n != "." && n != ".." && path.Base(n) == n && !strings.ContainsAny(n, "\\/\x00") && len(n) <= 200
}

// Signature is manifest.sig: who signed the manifest and the signature.
type Signature struct {
	Format string `json:"format"`
	// Key is the signer's note verifier key ("name+hash+base64"), so a
	// reader knows which key to ask the hospital for; it is never trusted
	// on its own.
	Key       string `json:"key"`
	Signature string `json:"signature"` // base64 Ed25519 over SignedMessage
}

// SignatureFormat names the signature file's layout.
const SignatureFormat = "medsec-dataset-signature/1"

// SignedMessage is what the signature covers: a context string and the
// manifest's exact bytes.
func SignedMessage(manifest []byte) []byte {
	return append([]byte("medsec dataset manifest v1\n"), manifest...)
}

// ParseSignature reads manifest.sig strictly.
func ParseSignature(b []byte) (*Signature, error) {
	if len(b) > 4096 {
		return nil, fmt.Errorf("read signature: %d bytes is too long: %w", len(b), ErrTampered)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Signature
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("read signature: %v: %w", err, ErrTampered)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read signature: data after the signature: %w", ErrTampered)
	}
	if s.Format != SignatureFormat {
		return nil, fmt.Errorf("read signature: format %q, want %q: %w", s.Format, SignatureFormat, ErrTampered)
	}
	if raw, err := base64.StdEncoding.DecodeString(s.Signature); err != nil || len(raw) != ed25519.SignatureSize {
		return nil, fmt.Errorf("read signature: not a base64 Ed25519 signature: %w", ErrTampered)
	}
	// The signature does not cover its own file, so the file must be
	// exactly as written: any change to it, even one JSON would forgive
	// (a key in other case, other spacing), is a change.
	if canon, err := s.encode(); err != nil || !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("read signature: %s is not as medsec writes it (changed after signing): %w", SignatureFile, ErrTampered)
	}
	return &s, nil
}

func (s *Signature) encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Verify checks the signature over manifest with the trusted verifier.
func (s *Signature) Verify(v note.Verifier, manifest []byte) bool {
	raw, err := base64.StdEncoding.DecodeString(s.Signature)
	return err == nil && s.Key != "" && v.Verify(SignedMessage(manifest), raw)
}
