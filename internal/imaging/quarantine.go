package imaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// States of a quarantined file.
const (
	StateHeld     = "held"     // kept out, waiting for the security officer
	StateReleased = "released" // the officer let it in (stored, or handed out)
	StateDeleted  = "deleted"  // deleted, or erased with its patient: its key is destroyed
)

// Errors callers branch on.
var (
	// ErrNotOfficer: seeing, releasing and deleting quarantined files
	// needs a security officer signed in with a second factor. HTTP 403.
	// The refusal is audited.
	ErrNotOfficer = errors.New("only a security officer signed in with a second factor may see, release or delete quarantined files")
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

// Item is one quarantined file as the console and the CLI show it to the
// security officer.
type Item struct {
	ID        string           `json:"id"`
	ImportID  string           `json:"import_id"`
	SHA256    string           `json:"sha256"`
	Size      int64            `json:"size"`
	Severity  guard.Severity   `json:"severity"`
	Detectors []guard.Detector `json:"detectors"`
	State     string           `json:"state"`
	HeldAt    time.Time        `json:"held_at"`
	// Patient is the pseudonym of the patient whose MRN the file carries,
	// once one matched ("" before, or when the file names none).
	Patient string `json:"patient,omitempty"`
	// Kept is false when the file was too large to keep (or was deleted):
	// the media itself must be set aside.
	Kept bool `json:"kept"`
	// Set once the officer decided.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	DecidedBy string    `json:"decided_by,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	// HandedTo names the officer a copy was handed to (Release with Out).
	HandedTo string `json:"handed_to,omitempty"`
	// Destroyed is set once the item's key is destroyed: its name,
	// origin and findings can never be read again.
	Destroyed bool `json:"destroyed,omitempty"`
	// From the sealed record and the import: where the file was, where
	// the media came from (as the operator typed it), why it was stopped.
	Name     string          `json:"name,omitempty"`
	Origin   string          `json:"origin,omitempty"`
	Findings []guard.Finding `json:"findings,omitempty"`
}

// quarantineRecord is the sealed part of an item: the file's name on the
// media may say whose study it is, and the MRN it carries is how it finds
// its patient later.
type quarantineRecord struct {
	Name     string          `json:"name"`
	MRN      string          `json:"mrn,omitempty"`
	Findings []guard.Finding `json:"findings"`
}

// Owners and fields of the intake's data keys.
func itemOwner(id string) string   { return "quarantine:" + id }
func importOwner(id string) string { return "imaging-import:" + id }
func recordField(id string) keys.Field {
	return keys.Field{Table: "quarantine_items", Record: id, Name: "record"}
}
func contentField(id string) keys.Field {
	return keys.Field{Table: "quarantine_items", Record: id, Name: "content"}
}
func originField(id string) keys.Field {
	return keys.Field{Table: "imaging_imports", Record: id, Name: "origin"}
}

// hold keeps a file out: a data key of the item's own, its content (nil
// when it could not be kept) and record sealed with it, an audit event
// and an alert, in one transaction. When the file names a known patient's
// MRN the item records the patient's pseudonym. It returns the item's id
// and that pseudonym.
func (in *Intake) hold(ctx context.Context, run *importRun, f heldFile) (string, string, error) {
	id := newID("q_")
	m, err := in.match(ctx, id, f.mrn, f.missed)
	if err != nil {
		return "", "", fmt.Errorf("quarantine %s: %w", f.res.SHA256, err)
	}
	rec, err := json.Marshal(quarantineRecord{Name: f.res.Path, MRN: f.mrn, Findings: f.res.Findings})
	if err != nil {
		return "", "", fmt.Errorf("quarantine %s: %w", f.res.SHA256, err)
	}
	sev, dets := summarize(f.res.Findings)
	err = in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		dk, err := in.cfg.Keys.CreateKey(ctx, tx, itemOwner(id), "quarantine")
		if err != nil {
			return err
		}
		var content []byte
		if f.content != nil {
			content = dk.Seal(contentField(id), f.content)
		}
		_, err = tx.Exec(ctx, `INSERT INTO quarantine_items (id, import_id, sha256, size, severity, detectors, state, held_at, record, content, keyed, patient, patient_id, unmatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
			id, run.id, f.res.SHA256, f.res.Size, sev.String(), joinDetectors(dets), StateHeld, in.now().UnixNano(),
			dk.Seal(recordField(id), rec), content, m.pseudonym, m.patientID, boolInt(m.unmatched))
		if err != nil {
			return err
		}
		if _, err := in.cfg.Audit.AppendTx(ctx, tx, in.holdEvent(id, run, sev, dets, m.pseudonym, f.content != nil)); err != nil {
			return err
		}
		_, err = in.cfg.Alerts.Raise(ctx, tx, holdAlert(id, run, f.res, sev, dets, m.pseudonym))
		return err
	})
	if err != nil {
		return "", "", fmt.Errorf("quarantine %s: %w", f.res.SHA256, err)
	}
	return id, m.pseudonym, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (in *Intake) holdEvent(id string, run *importRun, sev guard.Severity, dets []guard.Detector, patient string, kept bool) audit.Event {
	reason := fmt.Sprintf("from %s: %s, worst %s", run.label(), joinDetectors(dets), sev)
	if !kept {
		reason += "; content not kept (too large or unreadable): set the media aside"
	}
	return audit.Event{Time: in.now(), Actor: importer.ID, Role: importer.Role, Action: "quarantine.hold", Patient: patient,
		Resource: "Quarantine/" + id, Outcome: audit.Success, Source: run.operator, Reason: reason}
}

// holdAlert tells the security officer, without PHI: the alert names the
// import and media kind, the detectors, the item and the patient's
// pseudonym when known, never the file's name or the origin as typed.
func holdAlert(id string, run *importRun, res guard.FileResult, sev guard.Severity, dets []guard.Detector, patient string) alerts.Alert {
	level := alerts.Warning
	if sev >= guard.Critical {
		level = alerts.Critical
	}
	return alerts.Alert{Kind: alerts.KindQuarantine, Severity: level, Subject: "sha256:" + res.SHA256, Patient: patient,
		Summary: fmt.Sprintf("file from %s quarantined: %s (%s)", run.label(), joinDetectors(dets), sev),
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

func splitDetectors(s string) []guard.Detector {
	var out []guard.Detector
	for _, d := range strings.Split(s, ",") {
		if d != "" {
			out = append(out, guard.Detector(d))
		}
	}
	return out
}

// Filter selects quarantined files.
type Filter struct {
	State string // "" for every state
	Limit int
}

// Quarantined lists quarantined files, newest first, for a security
// officer signed in with a second factor. The list is audited before any
// item's record is unsealed; anyone else is refused, audited. Before it
// lists, it matches held files to patients registered since and erases
// the items of patients destroyed since (Tidy).
func (in *Intake) Quarantined(ctx context.Context, who identity.Principal, f Filter) ([]Item, error) {
	resource := "Quarantine?state=" + f.State
	if !isOfficer(who) {
		return nil, in.refuse(ctx, who, resource, actionList, ErrNotOfficer)
	}
	if err := in.Tidy(ctx); err != nil {
		return nil, err
	}
	items, sealed, err := in.rows(ctx, f)
	if err != nil {
		return nil, err
	}
	ev := in.officerEvent(who, actionList, resource, "", fmt.Sprintf("listed %d quarantined files", len(items)))
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		return nil, fmt.Errorf("audit before data: %w", err)
	}
	origins := map[string]string{}
	for i := range items {
		if err := in.unseal(ctx, &items[i], sealed[i], origins); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// QuarantineItem returns one quarantined file's item, for a security
// officer signed in with a second factor; the read is audited (with the
// patient's pseudonym when known) before the record is unsealed.
func (in *Intake) QuarantineItem(ctx context.Context, who identity.Principal, id string) (Item, error) {
	if !isOfficer(who) {
		return Item{}, in.refuse(ctx, who, "Quarantine/"+id, actionRead, ErrNotOfficer)
	}
	it, sealed, err := in.row(ctx, id)
	if err != nil {
		return Item{}, err
	}
	ev := in.officerEvent(who, actionRead, "Quarantine/"+id, it.Patient, "")
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		return Item{}, fmt.Errorf("audit before data: %w", err)
	}
	return it, in.unseal(ctx, &it, sealed, map[string]string{})
}

const itemColumns = `id, import_id, sha256, size, severity, detectors, state, held_at, decided_at, decided_by, decision, patient, handed_to, content IS NOT NULL, record`

// rows reads the items f selects, their records still sealed.
func (in *Intake) rows(ctx context.Context, f Filter) ([]Item, [][]byte, error) {
	q := `SELECT ` + itemColumns + ` FROM quarantine_items`
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
		return nil, nil, fmt.Errorf("list quarantine: %w", err)
	}
	defer rows.Close()
	var items []Item
	var sealed [][]byte
	for rows.Next() {
		it, rec, err := scanItem(rows)
		if err != nil {
			return nil, nil, err
		}
		items, sealed = append(items, it), append(sealed, rec)
	}
	return items, sealed, rows.Err()
}

// row reads one item, its record still sealed.
func (in *Intake) row(ctx context.Context, id string) (Item, []byte, error) {
	it, sealed, err := scanItem(in.cfg.DB.QueryRow(ctx, `SELECT `+itemColumns+` FROM quarantine_items WHERE id = ?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return Item{}, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return it, sealed, err
}

type rowScanner interface{ Scan(dest ...any) error }

func scanItem(row rowScanner) (Item, []byte, error) {
	var it Item
	var sev, dets string
	var held int64
	var decided *int64
	var sealed []byte
	var kept any
	if err := row.Scan(&it.ID, &it.ImportID, &it.SHA256, &it.Size, &sev, &dets, &it.State, &held, &decided, &it.DecidedBy, &it.Decision,
		&it.Patient, &it.HandedTo, &kept, &sealed); err != nil {
		return it, nil, err
	}
	it.Severity, _ = guard.ParseSeverity(sev)
	it.Detectors = splitDetectors(dets)
	it.HeldAt, it.Kept = time.Unix(0, held), truthy(kept)
	if decided != nil {
		it.DecidedAt = time.Unix(0, *decided)
	}
	return it, sealed, nil
}

// unseal opens an item's record with its key, and its import's origin
// (origins caches them by import). An item whose key is destroyed says so.
func (in *Intake) unseal(ctx context.Context, it *Item, sealed []byte, origins map[string]string) error {
	dk, err := in.cfg.Keys.ForOwner(ctx, in.cfg.DB, itemOwner(it.ID))
	if errors.Is(err, keys.ErrDestroyed) {
		it.Destroyed = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("open quarantine record %s: %w", it.ID, err)
	}
	plain, err := dk.Open(recordField(it.ID), sealed)
	if err != nil {
		return fmt.Errorf("open quarantine record %s: %w", it.ID, err)
	}
	var rec quarantineRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		return fmt.Errorf("open quarantine record %s: %w", it.ID, keys.ErrTampered)
	}
	it.Name, it.Findings = rec.Name, rec.Findings
	if _, ok := origins[it.ImportID]; !ok {
		origins[it.ImportID], err = in.origin(ctx, it.ImportID)
		if err != nil {
			return err
		}
	}
	it.Origin = origins[it.ImportID]
	return nil
}

// origin opens an import's origin as typed; "" while the import runs.
func (in *Intake) origin(ctx context.Context, importID string) (string, error) {
	var sealed []byte
	err := in.cfg.DB.QueryRow(ctx, `SELECT origin_sealed FROM imaging_imports WHERE id = ?`, importID).Scan(&sealed)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sealed == nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read import %s: %w", importID, err)
	}
	dk, err := in.cfg.Keys.ForOwner(ctx, in.cfg.DB, importOwner(importID))
	if err != nil {
		return "", fmt.Errorf("open origin of import %s: %w", importID, err)
	}
	plain, err := dk.Open(originField(importID), sealed)
	if err != nil {
		return "", fmt.Errorf("open origin of import %s: %w", importID, err)
	}
	return string(plain), nil
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

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
