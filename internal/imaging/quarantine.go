package imaging

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging/dicomhdr"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// States of a quarantined file.
const (
	StateHeld     = "held"     // kept out, waiting for the security officer
	StateReleased = "released" // the officer let it in (stored, or handed out)
	StateDeleted  = "deleted"  // the officer deleted it; only the record is left
)

// Errors callers branch on.
var (
	// ErrNotOfficer: release and delete need a security officer signed in
	// with a second factor. HTTP 403. The refusal is audited.
	ErrNotOfficer = errors.New("only a security officer signed in with a second factor may release or delete a quarantined file")
	// ErrNotFound: no quarantined file has that id. HTTP 404.
	ErrNotFound = errors.New("no such quarantined file")
	// ErrNotHeld: the file was already released or deleted (or its
	// content was too large to keep); nothing was changed. HTTP 409.
	ErrNotHeld = errors.New("quarantined file is not held")
	// ErrInvalid: the request lacks what it needs (a reason, an origin, a
	// destination); the message says what. HTTP 400.
	ErrInvalid = errors.New("invalid request")
)

// maxReason bounds the typed reasons of the officer and the media origin.
const maxReason = 500

// Item is one quarantined file as the console and the CLI show it.
type Item struct {
	ID        string           `json:"id"`
	ImportID  string           `json:"import_id"`
	SHA256    string           `json:"sha256"`
	Size      int64            `json:"size"`
	Severity  guard.Severity   `json:"severity"`
	Detectors []guard.Detector `json:"detectors"`
	State     string           `json:"state"`
	HeldAt    time.Time        `json:"held_at"`
	// Kept is false when the file was too large to keep (or was deleted):
	// the media itself must be set aside.
	Kept bool `json:"kept"`
	// Set once the officer decided.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	DecidedBy string    `json:"decided_by,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	// From the sealed record: where the file was and why it was stopped.
	Name     string          `json:"name"`
	Origin   string          `json:"origin"`
	Findings []guard.Finding `json:"findings"`
}

// quarantineRecord is the sealed part of an item: the file's name on the
// media may say whose study it is.
type quarantineRecord struct {
	Name     string          `json:"name"`
	Origin   string          `json:"origin"`
	ImportID string          `json:"import_id"`
	Findings []guard.Finding `json:"findings"`
}

// hold keeps a file out: its content (nil when it could not be kept)
// sealed, its record sealed, an audit event and an alert, in one
// transaction. It returns the item's id.
func (in *Intake) hold(ctx context.Context, run *importRun, res guard.FileResult, content []byte) (string, error) {
	id := newID("q_")
	rec := quarantineRecord{Name: res.Path, Origin: run.origin, ImportID: run.id, Findings: res.Findings}
	sealedRec, err := in.sealRecord(id, rec)
	if err != nil {
		return "", err
	}
	var sealedContent []byte
	if content != nil {
		if sealedContent, err = in.sealContent(id, res, content); err != nil {
			return "", err
		}
	}
	sev, dets := summarize(res.Findings)
	err = in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO quarantine_items (id, import_id, sha256, size, severity, detectors, state, held_at, record, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, run.id, res.SHA256, res.Size, sev.String(), joinDetectors(dets), StateHeld, in.now().UnixNano(), sealedRec, sealedContent)
		if err != nil {
			return err
		}
		if _, err := in.cfg.Audit.AppendTx(ctx, tx, in.holdEvent(id, run, sev, dets, content != nil)); err != nil {
			return err
		}
		_, err = in.cfg.Alerts.Raise(ctx, tx, holdAlert(id, run, res, sev, dets))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("quarantine %s: %w", res.SHA256, err)
	}
	return id, nil
}

func (in *Intake) holdEvent(id string, run *importRun, sev guard.Severity, dets []guard.Detector, kept bool) audit.Event {
	reason := fmt.Sprintf("from %s (import %s): %s, worst %s", run.origin, run.id, joinDetectors(dets), sev)
	if !kept {
		reason += "; content not kept (too large or unreadable): set the media aside"
	}
	return audit.Event{Time: in.now(), Actor: importer.ID, Role: importer.Role, Action: "quarantine.hold",
		Resource: "Quarantine/" + id, Outcome: audit.Success, Source: run.operator, Reason: reason}
}

// holdAlert tells the security officer, without PHI: the alert names the
// origin, the detectors and the item, never the file's name on the media.
func holdAlert(id string, run *importRun, res guard.FileResult, sev guard.Severity, dets []guard.Detector) alerts.Alert {
	level := alerts.Warning
	if sev >= guard.Critical {
		level = alerts.Critical
	}
	return alerts.Alert{Kind: alerts.KindQuarantine, Severity: level, Subject: "sha256:" + res.SHA256,
		Summary: fmt.Sprintf("file from %s quarantined: %s (%s)", run.origin, joinDetectors(dets), sev),
		Detail:  fmt.Sprintf("quarantine item %s, import %s; see `medsec quarantine show %s` to release or delete it", id, run.id, id),
		Dedup:   "quarantine:" + id}
}

// summarize returns the worst severity and the detectors of findings.
func summarize(fs []guard.Finding) (guard.Severity, []guard.Detector) {
	worst := guard.Info
	var dets []guard.Detector
	for _, f := range fs {
		worst = max(worst, f.Severity)
		if !slices.Contains(dets, f.Detector) {
			dets = append(dets, f.Detector)
		}
	}
	slices.Sort(dets)
	return worst, dets
}

func joinDetectors(ds []guard.Detector) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return strings.Join(s, ",")
}

// sealRecord seals the record under the quarantine key, bound to the item.
func (in *Intake) sealRecord(id string, rec quarantineRecord) ([]byte, error) {
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("seal quarantine record: %w", err)
	}
	return guard.AEADSealer(in.aead)(plain, recordAAD(id))
}

func (in *Intake) openRecord(id string, sealed []byte) (quarantineRecord, error) {
	var rec quarantineRecord
	plain, err := guard.AEADOpener(in.aead)(sealed, recordAAD(id))
	if err != nil {
		return rec, fmt.Errorf("open quarantine record %s: %w", id, guard.ErrTampered)
	}
	if err := json.Unmarshal(plain, &rec); err != nil {
		return rec, fmt.Errorf("open quarantine record %s: %w", id, guard.ErrTampered)
	}
	return rec, nil
}

func recordAAD(id string) []byte { return []byte("medsec.quarantine.record.v1\x00" + id) }

// sealContent seals the file in guard's chunked quarantine format. The
// format's own record is kept to what is not identifying (the item id as
// its name, digest, size, time); the chunks are bound to it, so content
// moved to another item fails to open.
func (in *Intake) sealContent(id string, res guard.FileResult, content []byte) ([]byte, error) {
	q := guard.Quarantine{OriginalName: id, SHA256: res.SHA256, Size: int64(len(content)), QuarantinedAt: in.now()}
	var buf bytes.Buffer
	buf.Grow(len(content) + len(content)/1000 + 512)
	if err := q.Seal(&buf, bytes.NewReader(content), guard.AEADSealer(in.aead)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// openContent unseals a quarantined file and checks it is the item's.
func (in *Intake) openContent(id string, sealed []byte) ([]byte, error) {
	var buf bytes.Buffer
	q, err := guard.OpenQuarantine(bytes.NewReader(sealed), &buf, guard.AEADOpener(in.aead))
	if err != nil {
		return nil, err
	}
	if q.OriginalName != id {
		return nil, fmt.Errorf("open quarantine %s: content belongs to %s: %w", id, q.OriginalName, guard.ErrTampered)
	}
	return buf.Bytes(), nil
}

// Filter selects quarantined files.
type Filter struct {
	State string // "" for every state
	Limit int
}

// Quarantined lists quarantined files, newest first, with their records
// unsealed. It reads no patient data: files, origins and findings only.
func (in *Intake) Quarantined(ctx context.Context, f Filter) ([]Item, error) {
	q := `SELECT id, import_id, sha256, size, severity, state, held_at, decided_at, decided_by, decision, record, content IS NOT NULL FROM quarantine_items`
	var args []any
	if f.State != "" {
		q += ` WHERE state = ?`
		args = append(args, f.State)
	}
	q += ` ORDER BY held_at DESC, id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := in.cfg.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		it, err := in.scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// QuarantineItem returns one quarantined file's item.
func (in *Intake) QuarantineItem(ctx context.Context, id string) (Item, error) {
	row := in.cfg.DB.QueryRow(ctx, `SELECT id, import_id, sha256, size, severity, state, held_at, decided_at, decided_by, decision, record, content IS NOT NULL FROM quarantine_items WHERE id = ?`, id)
	it, err := in.scanItem(row)
	if errors.Is(err, store.ErrNotFound) {
		return Item{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return it, err
}

type rowScanner interface{ Scan(dest ...any) error }

func (in *Intake) scanItem(row rowScanner) (Item, error) {
	var it Item
	var sev string
	var held int64
	var decided *int64
	var sealed []byte
	var kept any
	if err := row.Scan(&it.ID, &it.ImportID, &it.SHA256, &it.Size, &sev, &it.State, &held, &decided, &it.DecidedBy, &it.Decision, &sealed, &kept); err != nil {
		return it, err
	}
	it.Severity, _ = guard.ParseSeverity(sev)
	it.HeldAt, it.Kept = time.Unix(0, held), truthy(kept)
	if decided != nil {
		it.DecidedAt = time.Unix(0, *decided)
	}
	rec, err := in.openRecord(it.ID, sealed)
	if err != nil {
		return it, err
	}
	it.Name, it.Origin, it.Findings = rec.Name, rec.Origin, rec.Findings
	_, it.Detectors = summarize(rec.Findings)
	return it, nil
}

// truthy reads a boolean expression's value as SQLite (integer) or
// PostgreSQL (bool) returns it.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	}
	return false
}

// Decision is an officer's release or deletion.
type Decision struct {
	Who    identity.Principal
	Reason string
	// Out receives the released file when it is not a DICOM image the
	// store takes (a report, a viewer the officer checked), or when the
	// officer asks for a copy. Release refuses a non-image without Out.
	Out io.Writer
}

// Released says what a release did.
type Released struct {
	Item Item
	// Stored is set when the file went into the imaging store.
	Stored *records.ImagingReceipt
	// Written is the number of bytes handed to Decision.Out.
	Written int64
}

// Release lets a quarantined file in: a DICOM image is stored through the
// door like an import (preamble zeroed, matched by MRN), anything else is
// written to d.Out. Only a security officer with a second factor may, with
// a reason; the decision is audited before the content leaves. The sealed
// file is kept until someone deletes it.
func (in *Intake) Release(ctx context.Context, d Decision, id string) (Released, error) {
	it, err := in.decide(ctx, d, id, actionRelease, StateHeld)
	if err != nil {
		return Released{}, err
	}
	content, err := in.heldContent(ctx, id)
	if err != nil {
		return Released{}, in.refuse(ctx, d, id, actionRelease, err)
	}
	out := Released{Item: it}
	h, herr := dicomhdr.Read(content)
	image := herr == nil && !h.Directory() && len(h.Missing()) == 0
	if !image && d.Out == nil {
		return out, in.refuse(ctx, d, id, actionRelease, fmt.Errorf("%w: the file is not a DICOM image the store takes; give a destination for it", ErrInvalid))
	}
	how := "handed to the officer"
	if image {
		if out.Stored, err = in.storeReleased(ctx, it, h, content); err != nil {
			return out, in.refuse(ctx, d, id, actionRelease, err)
		}
		how = "stored as " + out.Stored.ID + " for " + out.Stored.Pseudonym
	}
	if err := in.settle(ctx, d, id, StateReleased, actionRelease, how, StateHeld); err != nil {
		return out, err
	}
	if d.Out != nil {
		n, err := d.Out.Write(content)
		out.Written = int64(n)
		if err != nil {
			return out, fmt.Errorf("write released file: %w", err)
		}
	}
	out.Item, err = in.QuarantineItem(ctx, id)
	return out, err
}

// Audit actions of the officer's decisions.
const (
	actionRelease = "quarantine.release"
	actionDelete  = "quarantine.delete"
)

func (in *Intake) storeReleased(ctx context.Context, it Item, h dicomhdr.Header, content []byte) (*records.ImagingReceipt, error) {
	data := bytes.Clone(content)
	dicomhdr.ZeroPreamble(data)
	rec, err := in.cfg.Door.StoreImaging(ctx, importRequest, h.PatientID, instanceOf(h, data, "released from quarantine "+it.ID+" ("+it.Origin+")"))
	if err != nil {
		return nil, fmt.Errorf("store released file: %w", err)
	}
	return &rec, nil
}

// Delete destroys a quarantined file's content (held or released); its
// record stays, so the list still shows what arrived and who deleted it.
// Only a security officer with a second factor may, with a reason;
// audited.
func (in *Intake) Delete(ctx context.Context, d Decision, id string) (Item, error) {
	if _, err := in.decide(ctx, d, id, actionDelete, StateHeld, StateReleased); err != nil {
		return Item{}, err
	}
	if err := in.settle(ctx, d, id, StateDeleted, actionDelete, "content destroyed", StateHeld, StateReleased); err != nil {
		return Item{}, err
	}
	// Freed pages were zeroed (secure_delete); push them out of the WAL.
	if err := in.cfg.DB.Compact(ctx); err != nil {
		return Item{}, err
	}
	return in.QuarantineItem(ctx, id)
}

// decide checks the officer, the reason and the item's state. Refusals
// are audited.
func (in *Intake) decide(ctx context.Context, d Decision, id, action string, from ...string) (Item, error) {
	if err := checkOfficer(d); err != nil {
		return Item{}, in.refuse(ctx, d, id, action, err)
	}
	it, err := in.QuarantineItem(ctx, id)
	if err != nil {
		return Item{}, err
	}
	if !slices.Contains(from, it.State) {
		return it, in.refuse(ctx, d, id, action, fmt.Errorf("%w: it was %s on %s by %s", ErrNotHeld, it.State, it.DecidedAt.Format(time.DateOnly), it.DecidedBy))
	}
	return it, nil
}

// heldContent unseals a held file's content and checks it is the item's.
func (in *Intake) heldContent(ctx context.Context, id string) ([]byte, error) {
	var sealed []byte
	if err := in.cfg.DB.QueryRow(ctx, `SELECT content FROM quarantine_items WHERE id = ?`, id).Scan(&sealed); err != nil {
		return nil, fmt.Errorf("read quarantine %s: %w", id, err)
	}
	if sealed == nil {
		return nil, fmt.Errorf("%w: its content was too large to keep or unreadable; set the media aside", ErrNotHeld)
	}
	return in.openContent(id, sealed)
}

func checkOfficer(d Decision) error {
	if !d.Who.Verified() || d.Who.Role != identity.RoleSecurityOfficer || !d.Who.MFA {
		return ErrNotOfficer
	}
	r := strings.TrimSpace(d.Reason)
	if r == "" || len(r) > maxReason {
		return fmt.Errorf("%w: give a reason of 1 to %d characters", ErrInvalid, maxReason)
	}
	return nil
}

// refuse audits a refused decision and returns cause.
func (in *Intake) refuse(ctx context.Context, d Decision, id, action string, cause error) error {
	outcome := audit.Failed
	if errors.Is(cause, ErrNotOfficer) {
		outcome = audit.Denied
	}
	ev := audit.Event{Time: in.now(), Actor: actorOf(d.Who), Role: d.Who.Role, Action: action, Resource: "Quarantine/" + id,
		Outcome: outcome, Source: d.Who.Source, Reason: cause.Error()}
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

func actorOf(p identity.Principal) string {
	if p.ID == "" {
		return "anonymous"
	}
	return p.ID
}

// settle records the decision with its audit event in one transaction;
// deletion drops the sealed file. A concurrent decision loses with
// ErrNotHeld.
func (in *Intake) settle(ctx context.Context, d Decision, id, state, action, what string, from ...string) error {
	set := `state = ?, decided_at = ?, decided_by = ?, decision = ?`
	if state == StateDeleted {
		set += `, content = NULL`
	}
	q := `UPDATE quarantine_items SET ` + set + ` WHERE id = ? AND state IN (` + strings.TrimSuffix(strings.Repeat("?,", len(from)), ",") + `)`
	reason := strings.TrimSpace(d.Reason)
	args := []any{state, in.now().UnixNano(), d.Who.ID, reason, id}
	for _, f := range from {
		args = append(args, f)
	}
	return in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: %s was decided meanwhile", ErrNotHeld, id)
		}
		ev := audit.Event{Time: in.now(), Actor: d.Who.ID, Role: d.Who.Role, Action: action, Resource: "Quarantine/" + id,
			Outcome: audit.Success, Source: d.Who.Source, Reason: reason + "; " + what}
		_, err = in.cfg.Audit.AppendTx(ctx, tx, ev)
		return err
	})
}

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
