// Package docsec is document security for exports (the paper's location 4,
// HIS; issue 4 item 7): a note or report that leaves medsec carries a
// visible watermark and an invisible marker naming who exported it, when
// and for what purpose, is sealed with age to a key the requesting user
// holds, and is audited through the one door, so that a leaked copy can be
// traced back to its exporter. Trace reads the marker from a leaked copy.
//
// It answers Table 2's "information illegally provided to external
// organizations or individuals" and "personal information leakages".
package docsec

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Migrations create the export ledger (no PHI: ids, pseudonyms, digests).
var Migrations = []store.Migration{
	{Component: "docsec", Version: 1, Name: "export ledger", SQL: `CREATE TABLE document_exports (
		id TEXT PRIMARY KEY,
		staff_id TEXT NOT NULL,
		username TEXT NOT NULL,
		purpose TEXT NOT NULL,
		exported_at BIGINT NOT NULL,
		record_id TEXT NOT NULL,
		patient TEXT NOT NULL,
		digest BLOB NOT NULL)`},
}

// Sentinel errors.
var (
	// ErrNoMarker means the text carries no marker that verifies: it was
	// not exported by this installation, or the marker was stripped.
	ErrNoMarker = errors.New("no export marker found")
	// ErrRecipient means the recipient is not an age X25519 public key
	// ("age1…"); the user should paste the public key of their age
	// identity.
	ErrRecipient = errors.New("recipient must be an age X25519 public key (age1…)")
)

// Exporter makes sealed, watermarked exports.
type Exporter struct {
	door *records.Door
	db   *store.DB
	key  []byte
	Now  func() time.Time
}

// New returns an exporter; markKey (32 bytes, a system secret) authenticates
// the invisible markers.
func New(door *records.Door, db *store.DB, markKey []byte) (*Exporter, error) {
	if door == nil || db == nil || len(markKey) < 32 {
		return nil, errors.New("docsec: the exporter needs the door, the database and a 32-byte marker key")
	}
	return &Exporter{door: door, db: db, key: markKey, Now: time.Now}, nil
}

// Mark is what an export's marker says.
type Mark struct {
	ExportID string    `json:"export_id"`
	StaffID  string    `json:"staff_id"`
	Username string    `json:"username"`
	Purpose  string    `json:"purpose"`
	At       time.Time `json:"at"`
}

// Export is a sealed document ready to hand to its requester.
type Export struct {
	Mark
	RecordID string
	Patient  string // pseudonym
	// Sealed is the ASCII-armored age file; only the requester's identity
	// opens it.
	Sealed []byte
}

// Export reads the record through the door as an export (decided and
// audited, the export id in the audit event), watermarks it, seals it to
// recipient and writes the ledger.
func (e *Exporter) Export(ctx context.Context, req records.Request, recordID, recipient string) (Export, error) {
	to, err := age.ParseX25519Recipient(strings.TrimSpace(recipient))
	if err != nil {
		return Export{}, fmt.Errorf("%w: %w", records.ErrInvalid, ErrRecipient)
	}
	m := Mark{ExportID: newExportID(), StaffID: req.Who.ID, Username: req.Who.Username, Purpose: req.Purpose, At: e.Now().UTC().Truncate(time.Second)}
	rec, err := e.door.ExportRecord(ctx, req, recordID, "document export "+m.ExportID+" watermarked and sealed to the requester")
	if err != nil {
		return Export{}, err
	}
	doc := Watermark(DocumentText(rec.Payload), m, e.key)
	sealed, err := seal(doc, to)
	if err != nil {
		return Export{}, fmt.Errorf("seal export %s: %w", m.ExportID, err)
	}
	x := Export{Mark: m, RecordID: recordID, Patient: e.door.Pseudonym(rec.PatientID), Sealed: sealed}
	digest := sha256.Sum256(doc)
	_, err = e.db.Exec(ctx, `INSERT INTO document_exports (id, staff_id, username, purpose, exported_at, record_id, patient, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ExportID, m.StaffID, m.Username, m.Purpose, m.At.UnixNano(), recordID, x.Patient, digest[:])
	if err != nil {
		return Export{}, fmt.Errorf("record export %s: %w", m.ExportID, err)
	}
	return x, nil
}

func newExportID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "ex_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func seal(doc []byte, to age.Recipient) ([]byte, error) {
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, to)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(doc); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// DocumentText is the readable text of a stored note: the text/* attachment
// of a FHIR DocumentReference, or the payload itself when it is plain text.
func DocumentText(payload []byte) string {
	var doc struct {
		Content []struct {
			Attachment struct {
				ContentType string `json:"contentType"`
				Data        string `json:"data"`
			} `json:"attachment"`
		} `json:"content"`
	}
	if json.Unmarshal(payload, &doc) != nil {
		return string(payload)
	}
	var parts []string
	for _, c := range doc.Content {
		if !strings.HasPrefix(c.Attachment.ContentType, "text/") {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(c.Attachment.Data); err == nil {
			parts = append(parts, string(b))
		}
	}
	if len(parts) == 0 {
		return string(payload)
	}
	return strings.Join(parts, "\n\n")
}

// Finding is what Trace learned from a leaked copy.
type Finding struct {
	Mark
	// Recorded is true when the ledger holds the export (same
	// installation); RecordID and Patient then say what was exported.
	Recorded bool
	RecordID string
	Patient  string
}

// Trace reads the marker of a leaked copy (the whole text or a fragment
// that kept one of its lines), checks it was made here and names the
// exporter.
func (e *Exporter) Trace(ctx context.Context, leaked []byte) (Finding, error) {
	m, err := ReadMark(leaked, e.key)
	if err != nil {
		return Finding{}, err
	}
	f := Finding{Mark: m}
	err = e.db.QueryRow(ctx, `SELECT record_id, patient FROM document_exports WHERE id = ?`, m.ExportID).Scan(&f.RecordID, &f.Patient)
	if err == nil {
		f.Recorded = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return Finding{}, fmt.Errorf("read export ledger: %w", err)
	}
	return f, nil
}

// encodeMark packs a mark with its MAC: version, then length-prefixed
// export id, staff id, user name and purpose, the time, and 16 bytes of
// HMAC-SHA256 over all of it.
func encodeMark(m Mark, key []byte) []byte {
	b := []byte{1}
	for _, s := range []string{m.ExportID, m.StaffID, m.Username, m.Purpose} {
		if len(s) > 255 {
			s = s[:255]
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(m.At.Unix()))
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return append(b, mac.Sum(nil)[:16]...)
}

// decodeMark unpacks and verifies a mark.
func decodeMark(b, key []byte) (Mark, bool) {
	if len(b) < 1+4+8+16 || b[0] != 1 {
		return Mark{}, false
	}
	body, tag := b[:len(b)-16], b[len(b)-16:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(tag, mac.Sum(nil)[:16]) {
		return Mark{}, false
	}
	var fields [4]string
	rest := body[1:]
	for i := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Mark{}, false
		}
		fields[i], rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
	}
	if len(rest) != 8 {
		return Mark{}, false
	}
	at := time.Unix(int64(binary.BigEndian.Uint64(rest)), 0).UTC()
	return Mark{ExportID: fields[0], StaffID: fields[1], Username: fields[2], Purpose: fields[3], At: at}, true
}
