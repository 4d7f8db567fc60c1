package provision

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/store"
)

// Entry is one package in the provision ledger: what went to whom, why, on
// what basis, when, its digest and its destruction deadline, and the
// receipt that closed it. It holds no PHI: the patient by pseudonym.
type Entry struct {
	ID            string    `json:"id"`
	Recipient     string    `json:"recipient"`
	RecipientName string    `json:"recipient_name"`
	RecipientKind string    `json:"recipient_kind"`
	Patient       string    `json:"patient"`
	Purpose       string    `json:"purpose"`
	Basis         string    `json:"basis,omitempty"`
	Classes       []string  `json:"classes"`
	Form          string    `json:"form"`
	RequestedBy   string    `json:"requested_by"`
	Created       time.Time `json:"created"`
	Deadline      time.Time `json:"deadline"`
	Digest        string    `json:"sha256"`
	Size          int64     `json:"size"`
	Withheld      int       `json:"withheld,omitempty"`
	// Receipt is the signed destruction receipt that closed the entry.
	Receipt   string    `json:"receipt,omitempty"`
	Destroyed time.Time `json:"destroyed,omitzero"`
	Closed    time.Time `json:"closed,omitzero"`
}

// Ledger states.
const (
	StateOpen    = "open"    // at the recipient, before its deadline
	StateOverdue = "overdue" // past its deadline without a receipt
	StateClosed  = "closed"  // destroyed, receipt verified
)

// State is the entry's state at now.
func (e Entry) State(now time.Time) string {
	switch {
	case !e.Closed.IsZero():
		return StateClosed
	case now.After(e.Deadline):
		return StateOverdue
	}
	return StateOpen
}

func newPackageID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "pkg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// record writes the ledger entry and the disclosure audit event together.
func (s *Service) record(ctx context.Context, r Request, e Entry) error {
	ev := audit.Event{Time: e.Created, Actor: r.Who.ID, Role: r.Who.Role, Action: "provision.disclose", Purpose: r.Purpose,
		Patient: e.Patient, Resource: "Package/" + e.ID, Outcome: audit.Success, Source: r.Who.Source,
		Reason: fmt.Sprintf("to %s (%s): classes %s, %s, basis %q, sha256 %s, destroy by %s", e.Recipient, e.RecipientKind,
			strings.Join(e.Classes, ","), e.Form, e.Basis, e.Digest, e.Deadline.UTC().Format(time.RFC3339))}
	err := s.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO provision_ledger (id, recipient_id, patient, purpose, basis, classes, form, requested_by, created_at, deadline, digest, size, withheld)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Recipient, e.Patient, e.Purpose, e.Basis, strings.Join(e.Classes, ","), e.Form,
			e.RequestedBy, e.Created.UnixNano(), e.Deadline.UnixNano(), e.Digest, e.Size, e.Withheld); err != nil {
			return err
		}
		_, err := s.log.AppendTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("record package %s: %w", e.ID, err)
	}
	return nil
}

const entryCols = `l.id, l.recipient_id, r.name, r.kind, l.patient, l.purpose, l.basis, l.classes, l.form, l.requested_by, l.created_at, l.deadline,
	l.digest, l.size, l.withheld, COALESCE(l.receipt, ''), l.destroyed_at, l.closed_at`

const entryFrom = ` FROM provision_ledger l JOIN provision_recipients r ON r.id = l.recipient_id`

// Filter narrows a ledger listing.
type Filter struct {
	Patient string // pseudonym
	Open    bool   // only entries without a receipt
}

// Entries lists the ledger, newest first.
func (s *Service) Entries(ctx context.Context, f Filter) ([]Entry, error) {
	q := `SELECT ` + entryCols + entryFrom + ` WHERE 1 = 1`
	var args []any
	if f.Patient != "" {
		q += ` AND l.patient = ?`
		args = append(args, f.Patient)
	}
	if f.Open {
		q += ` AND l.closed_at IS NULL`
	}
	return s.queryEntries(ctx, s.db, q+` ORDER BY l.created_at DESC, l.id`, args...)
}

// Entry returns one ledger entry.
func (s *Service) Entry(ctx context.Context, id string) (Entry, error) {
	return s.entryIn(ctx, s.db, id)
}

func (s *Service) entryIn(ctx context.Context, q store.Querier, id string) (Entry, error) {
	es, err := s.queryEntries(ctx, q, `SELECT `+entryCols+entryFrom+` WHERE l.id = ?`, id)
	if err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, fmt.Errorf("%w %q: no package of this hospital has that id", ErrUnknownPackage, truncate(id, 60))
	}
	return es[0], nil
}

func (s *Service) queryEntries(ctx context.Context, q store.Querier, query string, args ...any) ([]Entry, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var classes string
		var created, deadline int64
		var destroyed, closed *int64
		if err := rows.Scan(&e.ID, &e.Recipient, &e.RecipientName, &e.RecipientKind, &e.Patient, &e.Purpose, &e.Basis, &classes, &e.Form,
			&e.RequestedBy, &created, &deadline, &e.Digest, &e.Size, &e.Withheld, &e.Receipt, &destroyed, &closed); err != nil {
			return nil, err
		}
		e.Classes, e.Created, e.Deadline = splitList(classes), time.Unix(0, created), time.Unix(0, deadline)
		e.Destroyed, e.Closed = unixOrZero(destroyed), unixOrZero(closed)
		out = append(out, e)
	}
	return out, rows.Err()
}

func unixOrZero(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n)
}

// ImportReceipt checks a recipient's destruction receipt against the
// ledger — the package it names, the recipient it went to, that package's
// digest, the hospital, a believable date — and its signature against the
// recipient's registered receipt key, then closes the entry and clears its
// overdue alert. A refused receipt is audited and the entry stays open.
func (s *Service) ImportReceipt(ctx context.Context, signed []byte) (Entry, error) {
	r, err := ParseReceipt(signed)
	if err != nil {
		return Entry{}, s.refuseReceipt(ctx, Entry{}, "", err)
	}
	e, err := s.Entry(ctx, r.Package)
	if err != nil {
		return Entry{}, s.refuseReceipt(ctx, Entry{}, r.Package, err)
	}
	if err := s.checkReceipt(ctx, r, e, signed); err != nil {
		return e, s.refuseReceipt(ctx, e, r.Package, err)
	}
	now := s.now()
	err = s.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE provision_ledger SET receipt = ?, destroyed_at = ?, closed_at = ? WHERE id = ? AND closed_at IS NULL`,
			string(signed), r.Destroyed.UnixNano(), now.UnixNano(), e.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: package %s", ErrClosed, e.ID)
		}
		if e.State(now) == StateOverdue {
			if err := s.lateReceipt(ctx, tx, e); err != nil {
				return err
			}
		}
		_, err = s.log.AppendTx(ctx, tx, s.event("provision.receipt", e.Patient, "Package/"+e.ID, audit.Success,
			fmt.Sprintf("recipient %s destroyed the package on %s (%s); receipt verified, ledger entry closed", e.Recipient, r.Field("destroyed"), r.Method)))
		return err
	})
	if err != nil {
		return e, fmt.Errorf("import receipt for %s: %w", e.ID, err)
	}
	return s.Entry(ctx, e.ID)
}

// Field returns one of the receipt's fields as written.
func (r Receipt) Field(name string) string { return r.field(name) }

// checkReceipt matches a parsed receipt to its ledger entry and verifies
// its signature.
func (s *Service) checkReceipt(ctx context.Context, r Receipt, e Entry, signed []byte) error {
	switch {
	case !e.Closed.IsZero():
		return fmt.Errorf("%w: package %s was closed on %s", ErrClosed, e.ID, e.Closed.UTC().Format(time.RFC3339))
	case r.Recipient != e.Recipient:
		return fmt.Errorf("%w: it names recipient %q but package %s went to %q", ErrBadReceipt, r.Recipient, e.ID, e.Recipient)
	case r.SHA256 != e.Digest:
		return fmt.Errorf("%w: it is for another package: its SHA-256 %s… differs from the ledger's %s… for %s", ErrBadReceipt, r.SHA256[:12], e.Digest[:12], e.ID)
	case r.Hospital != s.signer.Name():
		return fmt.Errorf("%w: it names hospital %q, not this one (%s)", ErrBadReceipt, r.Hospital, s.signer.Name())
	case r.Destroyed.Before(e.Created.Truncate(time.Second)) || r.Destroyed.After(s.now().Add(24*time.Hour)):
		return fmt.Errorf("%w: it says the package was destroyed on %s, before it was sent or in the future", ErrBadReceipt, r.Field("destroyed"))
	}
	rec, err := s.Recipient(ctx, e.Recipient)
	if err != nil {
		return err
	}
	v, err := note.NewVerifier(rec.ReceiptKey)
	if err != nil {
		return fmt.Errorf("recipient %s: %w", rec.ID, err)
	}
	_, err = note.Open(signed, note.VerifierList(v))
	var inv *note.InvalidSignatureError
	var unv *note.UnverifiedNoteError
	switch {
	case errors.As(err, &inv):
		return fmt.Errorf("%w: %w: its signature does not match its text", ErrBadReceipt, ErrTampered)
	case errors.As(err, &unv):
		return fmt.Errorf("%w: it is not signed by the receipt key registered for %s (%s)", ErrBadReceipt, rec.ID, v.Name())
	case err != nil:
		return fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	return nil
}

func (s *Service) refuseReceipt(ctx context.Context, e Entry, pkg string, cause error) error {
	resource := "Package/" + truncate(pkg, 60)
	if pkg == "" {
		resource = "Package/?"
	}
	if _, err := s.log.Append(ctx, s.event("provision.receipt", e.Patient, resource, audit.Denied, cause.Error())); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

func (s *Service) event(action, patient, resource, outcome, reason string) audit.Event {
	return audit.Event{Time: s.now(), Actor: "system:provision", Role: "system", Action: action, Purpose: "HOPERAT",
		Patient: patient, Resource: resource, Outcome: outcome, Source: s.oper, Reason: reason}
}

// lateReceipt tells the security officer that an overdue package's
// receipt came, so the overdue alert can be acknowledged.
func (s *Service) lateReceipt(ctx context.Context, tx *store.Tx, e Entry) error {
	_, err := s.alerts.Raise(ctx, tx, alerts.Alert{Kind: alerts.KindProvision, Severity: alerts.Info, Subject: e.ID, Patient: e.Patient,
		Summary: fmt.Sprintf("the destruction receipt of overdue package %s from %s arrived and was verified; its overdue alert can be acknowledged", e.ID, e.Recipient),
		Dedup:   "receipt:" + e.ID})
	return err
}

// CheckOverdue raises an alert for every package past its deadline
// without a receipt (once per package) and returns the overdue entries.
func (s *Service) CheckOverdue(ctx context.Context) ([]Entry, error) {
	now := s.now()
	overdue, err := s.queryEntries(ctx, s.db, `SELECT `+entryCols+entryFrom+` WHERE l.closed_at IS NULL AND l.deadline < ? ORDER BY l.deadline, l.id`, now.UnixNano())
	if err != nil {
		return nil, err
	}
	for _, e := range overdue {
		a := alerts.Alert{Kind: alerts.KindOverdue, Severity: alerts.Warning, Subject: e.ID, Patient: e.Patient, Dedup: "overdue:" + e.ID,
			Summary: fmt.Sprintf("package %s to %s (%s) was due for destruction on %s and no receipt came: ask the recipient to destroy it and send its receipt",
				e.ID, e.RecipientName, e.Recipient, e.Deadline.UTC().Format(time.DateOnly)),
			Detail: fmt.Sprintf("purpose %s, classes %s, %s data, sent %s by %s, sha256 %s", e.Purpose, strings.Join(e.Classes, ","), e.Form,
				e.Created.UTC().Format(time.RFC3339), e.RequestedBy, e.Digest)}
		if _, err := s.alerts.Raise(ctx, s.db, a); err != nil {
			return nil, err
		}
	}
	return overdue, nil
}

// Kind says the ledger is the data map's provision source.
func (s *Service) Kind() string { return lifecycle.KindProvision }

// Locations lists the packages sent with the patient's data, and what
// became of each.
func (s *Service) Locations(ctx context.Context, p lifecycle.Subject) ([]lifecycle.Location, error) {
	es, err := s.Entries(ctx, Filter{Patient: p.Pseudonym})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]lifecycle.Location, 0, len(es))
	for _, e := range es {
		out = append(out, location(e, now))
	}
	return out, nil
}

func location(e Entry, now time.Time) lifecycle.Location {
	l := lifecycle.Location{Kind: lifecycle.KindProvision, Place: fmt.Sprintf("package %s (%s, %s)", e.ID, strings.Join(e.Classes, ","), e.Form),
		Holder: fmt.Sprintf("%s (%s %s)", e.RecipientName, e.RecipientKind, e.Recipient), Count: 1, Since: e.Created, Until: e.Deadline}
	switch e.State(now) {
	case StateClosed:
		l.Stage = lifecycle.StageDestruction
		l.State = fmt.Sprintf("destroyed on %s, signed receipt verified", e.Destroyed.UTC().Format(time.DateOnly))
	case StateOverdue:
		l.Stage = lifecycle.StageProvision
		l.State = fmt.Sprintf("OVERDUE: due for destruction on %s, no receipt", e.Deadline.UTC().Format(time.DateOnly))
	default:
		l.Stage = lifecycle.StageProvision
		l.State = fmt.Sprintf("at the recipient for %s; destroy by %s, awaiting receipt", e.Purpose, e.Deadline.UTC().Format(time.DateOnly))
	}
	return l
}

// Erase acts on a patient's erasure: the packages still at recipients
// cannot be reached from here, so each gets an alert to ask the recipient
// for destruction now; they are returned as the copies still outside.
func (s *Service) Erase(ctx context.Context, p lifecycle.Subject, basis string) ([]lifecycle.Location, error) {
	es, err := s.Entries(ctx, Filter{Patient: p.Pseudonym, Open: true})
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]lifecycle.Location, 0, len(es))
	for _, e := range es {
		a := alerts.Alert{Kind: alerts.KindProvision, Severity: alerts.Warning, Subject: e.ID, Patient: p.Pseudonym, Dedup: "erased:" + e.ID,
			Summary: fmt.Sprintf("patient %s was erased; package %s is still at %s (%s): ask for its destruction now and its receipt",
				p.Pseudonym, e.ID, e.RecipientName, e.Recipient),
			Detail: truncate(basis, 200)}
		if _, err := s.alerts.Raise(ctx, s.db, a); err != nil {
			return out, err
		}
		out = append(out, location(e, now))
	}
	return out, nil
}

var _ lifecycle.Eraser = (*Service)(nil)
