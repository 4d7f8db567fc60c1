package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// BreakGlassLimit is how long an emergency access stays open: the policy
// refuses a session longer than four hours, and the door never opens one.
const BreakGlassLimit = 4 * time.Hour

// ActionBreakGlass is the policy action of opening an emergency access.
const ActionBreakGlass = "break_glass"

// BreakGlassSession is an emergency access a clinician opened on one
// patient by typing a reason. It is recorded when opened and raises an
// alert for the security officer's review; until Expires the clinician's
// requests that break the glass on this patient use it.
type BreakGlassSession struct {
	ID      string
	StaffID string
	Patient string // pseudonym
	Reason  string
	Started time.Time
	Expires time.Time
}

// breakGlass returns the session in force for this user and patient, or
// opens one: the opening is its own decision (action break_glass), its own
// audit event and an alert, committed together. A refused opening is
// audited and returned as *DeniedError.
func (d *Door) breakGlass(ctx context.Context, a *access, q Question) (*BreakGlassSession, error) {
	if d.alerts == nil {
		return nil, errors.New("break-glass needs the security officer's alert inbox, which this door lacks")
	}
	if s, err := d.openSession(ctx, a.req.Who.ID, a.facts); err != nil || s != nil {
		return s, err
	}
	now := d.now()
	s := &BreakGlassSession{ID: newID("bg_"), StaffID: a.req.Who.ID, Patient: a.facts.Pseudonym,
		Reason: strings.TrimSpace(a.req.BreakGlass), Started: now, Expires: now.Add(BreakGlassLimit)}
	q.Action, q.Emergency = ActionBreakGlass, s
	open := &access{req: a.req, action: ActionBreakGlass, class: a.class, facts: a.facts,
		resource: "Patient/" + a.facts.Pseudonym, glass: s}
	open.decision = d.decider.Decide(ctx, q)
	if !open.decision.Allow {
		if _, err := d.log.Append(ctx, d.event(open, audit.Denied, strings.Join(open.decision.Reasons, "; "))); err != nil {
			return nil, err
		}
		return nil, &DeniedError{Decision: open.decision}
	}
	if err := d.recordBreakGlass(ctx, open, s); err != nil {
		return nil, fmt.Errorf("open break-glass on %s: %w", a.facts.Pseudonym, err)
	}
	return s, nil
}

// openSession finds the user's break-glass session on the patient that is
// in force now, or nil.
func (d *Door) openSession(ctx context.Context, staffID string, f *PatientFacts) (*BreakGlassSession, error) {
	now := d.now().UnixNano()
	s := &BreakGlassSession{StaffID: staffID, Patient: f.Pseudonym}
	var started, expires int64
	err := d.db.QueryRow(ctx, `SELECT id, started_at, expires_at FROM phi_break_glass WHERE staff_id = ? AND patient_id = ? AND started_at <= ? AND expires_at > ? ORDER BY started_at DESC LIMIT 1`,
		staffID, f.ID, now, now).Scan(&s.ID, &started, &expires)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read break-glass sessions: %w", err)
	}
	s.Started, s.Expires = time.Unix(0, started), time.Unix(0, expires)
	return s, nil
}

// recordBreakGlass stores the session (the typed reason sealed with the
// patient's key), its audit event and the security officer's alert in one
// transaction.
func (d *Door) recordBreakGlass(ctx context.Context, a *access, s *BreakGlassSession) error {
	pk, err := d.patientKey(ctx, a.facts)
	if err != nil {
		return err
	}
	// The typed reason often names the patient or the diagnosis: it is
	// sealed with the patient's key and never copied into the audit log or
	// the alert (the officer reads it through BreakGlassReason).
	reason := pk.Seal(keys.Field{Table: "phi_break_glass", Record: s.ID, Name: "reason"}, []byte(s.Reason))
	detail := fmt.Sprintf("session %s; policy: %s; open until %s; the typed reason is sealed with the patient's data (open it from the review)", s.ID,
		strings.Join(a.decision.Policies, ", "), s.Expires.UTC().Format(time.RFC3339))
	return d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO phi_break_glass (id, staff_id, patient_id, reason, started_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			s.ID, s.StaffID, a.facts.ID, reason, s.Started.UnixNano(), s.Expires.UnixNano()); err != nil {
			return err
		}
		ev := d.event(a, audit.Success, "break-glass session "+s.ID+" opened until "+s.Expires.UTC().Format(time.RFC3339))
		ev.Resource = "BreakGlass/" + s.ID
		if _, err := d.log.AppendTx(ctx, tx, ev); err != nil {
			return err
		}
		_, err := d.alerts.Raise(ctx, tx, alerts.Alert{Kind: alerts.KindBreakGlass, Severity: alerts.Warning,
			Subject: s.StaffID, Patient: s.Patient, Resource: "BreakGlass/" + s.ID, Dedup: "break-glass:" + s.ID, Detail: detail,
			Summary: fmt.Sprintf("%s (%s) broke the glass on patient %s; review the emergency access", a.req.Who.Username, a.req.Who.Role, s.Patient)})
		return err
	})
}

// BreakGlassReason opens the typed reason of a break-glass session for the
// security officer's review. It is a read of audit data about the patient:
// decided (class audit), audited, then unsealed.
func (d *Door) BreakGlassReason(ctx context.Context, req Request, sessionID string) (string, error) {
	var patientID string
	var sealed []byte
	err := d.db.QueryRow(ctx, `SELECT patient_id, reason FROM phi_break_glass WHERE id = ?`, sessionID).Scan(&patientID, &sealed)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: break-glass session %s", ErrNotFound, sessionID)
	}
	if err != nil {
		return "", err
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return "", err
	}
	a := &access{req: req, action: ActionRead, class: ClassAudit, facts: facts, resource: "BreakGlass/" + sessionID}
	if err := d.authorize(ctx, a); err != nil {
		return "", err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return "", d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, "break-glass reason opened for review"); err != nil {
		return "", err
	}
	pt, err := pk.Open(keys.Field{Table: "phi_break_glass", Record: sessionID, Name: "reason"}, sealed)
	return string(pt), err
}
