package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	policy "github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Consent records (issue 4 item 4). Each record permits or denies one
// purpose of use, for some data classes, during a period; records are never
// changed or deleted, only withdrawn, so the history stays. A withdrawal
// takes effect at once: the terms the policy weighs are kept on the
// patient's row and rewritten in the withdrawal's transaction, so the very
// next decision sees them.

// Consent is one consent record.
type Consent struct {
	ID        string
	PatientID string
	Pseudonym string
	Purpose   string // HL7 PurposeOfUse (HRESCH, MLTRAINING, HPAYMT, …)
	Permit    bool   // permit, or an explicit denial (a denial wins)
	// Classes the record covers; empty means every class.
	Classes []string
	// From is when it takes effect; Until when it ends (zero: no end).
	From, Until time.Time
	// FormRef points at the signed form (a scan id, a paper form number);
	// it is sealed with the patient's key.
	FormRef    string
	RecordedBy string
	RecordedAt time.Time
	// Withdrawal, if any: who, when, why (the reason is sealed).
	WithdrawnAt    time.Time
	WithdrawnBy    string
	WithdrawReason string
}

// ConsentTerm is what the policy weighs of a consent record.
type ConsentTerm struct {
	Purpose string    `json:"purpose"`
	Permit  bool      `json:"permit"`
	Classes []string  `json:"classes,omitempty"`
	From    time.Time `json:"from"`
	Until   time.Time `json:"until,omitzero"`
}

// Term is the record's effect: a withdrawn record ends at its withdrawal.
func (c Consent) Term() ConsentTerm {
	t := ConsentTerm{Purpose: c.Purpose, Permit: c.Permit, Classes: c.Classes, From: c.From, Until: c.Until}
	if !c.WithdrawnAt.IsZero() && (t.Until.IsZero() || c.WithdrawnAt.Before(t.Until)) {
		t.Until = c.WithdrawnAt
	}
	return t
}

// Active reports whether the record is in force at now.
func (c Consent) Active(now time.Time) bool {
	t := c.Term()
	return !now.Before(t.From) && (t.Until.IsZero() || now.Before(t.Until))
}

func decodeTerms(s string) ([]ConsentTerm, error) {
	if s == "" {
		return nil, nil
	}
	var out []ConsentTerm
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}

// checkConsent refuses a record the policy could not judge.
func checkConsent(c *Consent) error {
	if _, err := policy.ParsePurpose(c.Purpose); err != nil {
		return fmt.Errorf("%w: unknown purpose of use %q", ErrInvalid, c.Purpose)
	}
	known := policy.DataClasses()
	for _, cl := range c.Classes {
		if !slices.Contains(known, policy.DataClass(cl)) {
			return fmt.Errorf("%w: unknown data class %q", ErrInvalid, cl)
		}
	}
	if !c.Until.IsZero() && !c.Until.After(c.From) {
		return fmt.Errorf("%w: a consent's period must end after it starts", ErrInvalid)
	}
	if len(c.FormRef) > 500 {
		return fmt.Errorf("%w: the form reference is longer than 500 bytes", ErrInvalid)
	}
	return nil
}

func (c Consent) describe() string {
	verb := "denies"
	if c.Permit {
		verb = "permits"
	}
	classes := "every class"
	if len(c.Classes) > 0 {
		classes = strings.Join(c.Classes, ",")
	}
	return fmt.Sprintf("consent %s %s %s for %s", c.ID, verb, c.Purpose, classes)
}

// RecordConsent records a consent (the registration desk, usually, with
// purpose HOPERAT). From defaults to now.
func (d *Door) RecordConsent(ctx context.Context, req Request, patientID string, c Consent) (Consent, error) {
	if c.From.IsZero() {
		c.From = d.now()
	}
	c.Classes = uniqueSorted(c.Classes)
	if err := checkConsent(&c); err != nil {
		return Consent{}, err
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return Consent{}, err
	}
	c.ID, c.PatientID, c.Pseudonym = newID("cs_"), patientID, facts.Pseudonym
	c.RecordedBy, c.RecordedAt = req.Who.ID, d.now()
	c.WithdrawnAt, c.WithdrawnBy, c.WithdrawReason = time.Time{}, "", ""
	a := &access{req: req, action: ActionWrite, class: ClassConsent, facts: facts, resource: "Consent/" + c.ID}
	if err := d.authorize(ctx, a); err != nil {
		return Consent{}, err
	}
	return d.storeConsent(ctx, a, c)
}

// storeConsent seals and stores a decided consent with its audit event.
func (d *Door) storeConsent(ctx context.Context, a *access, c Consent) (Consent, error) {
	patientID := c.PatientID
	pk, err := d.patientKey(ctx, a.facts)
	if err != nil {
		return Consent{}, d.auditFailure(ctx, a, err)
	}
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := insertConsent(ctx, tx, pk, c); err != nil {
			return err
		}
		if err := refreshTerms(ctx, tx, patientID); err != nil {
			return err
		}
		_, err := d.log.AppendTx(ctx, tx, d.event(a, audit.Success, c.describe()))
		return err
	})
	if err != nil {
		return Consent{}, fmt.Errorf("record consent: %w", err)
	}
	return c, nil
}

func insertConsent(ctx context.Context, tx *store.Tx, pk *keys.PatientKey, c Consent) error {
	var form []byte
	if c.FormRef != "" {
		form = pk.Seal(keys.Field{Table: "phi_consents", Record: c.ID, Name: "form_ref"}, []byte(c.FormRef))
	}
	_, err := tx.Exec(ctx, `INSERT INTO phi_consents (id, patient_id, purpose, permit, classes, from_at, until_at, form_ref, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.PatientID, c.Purpose, boolInt(c.Permit), strings.Join(c.Classes, ","), c.From.UnixNano(), nanosOrNil(c.Until), form, c.RecordedBy, c.RecordedAt.UnixNano())
	return err
}

func nanosOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n)
}

// refreshTerms rewrites the consent terms kept on the patient's row from
// the records, inside the transaction that changed them.
func refreshTerms(ctx context.Context, tx *store.Tx, patientID string) error {
	cs, err := queryConsents(ctx, tx, nil, `WHERE patient_id = ?`, patientID)
	if err != nil {
		return err
	}
	terms := make([]ConsentTerm, 0, len(cs))
	for _, c := range cs {
		terms = append(terms, c.Term())
	}
	b, err := json.Marshal(terms)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE phi_patients SET consents = ? WHERE id = ?`, string(b), patientID)
	return err
}

// WithdrawConsent ends a consent record now. The record stays in the
// history with who withdrew it, when and why.
func (d *Door) WithdrawConsent(ctx context.Context, req Request, consentID, reason string) (Consent, error) {
	patientID, err := d.consentPatient(ctx, consentID)
	if err != nil {
		return Consent{}, err
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return Consent{}, err
	}
	a := &access{req: req, action: ActionWrite, class: ClassConsent, facts: facts, resource: "Consent/" + consentID}
	if err := d.authorize(ctx, a); err != nil {
		return Consent{}, err
	}
	return d.withdraw(ctx, a, consentID, req.Who.ID, reason)
}

func (d *Door) consentPatient(ctx context.Context, consentID string) (string, error) {
	var patientID string
	err := d.db.QueryRow(ctx, `SELECT patient_id FROM phi_consents WHERE id = ?`, consentID).Scan(&patientID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: consent %s", ErrNotFound, consentID)
	}
	return patientID, err
}

// withdraw ends the record, rewrites the terms and audits, in one
// transaction; a record already withdrawn is refused.
func (d *Door) withdraw(ctx context.Context, a *access, consentID, by, reason string) (Consent, error) {
	if len(reason) > 2000 {
		return Consent{}, fmt.Errorf("%w: the reason is longer than 2000 bytes", ErrInvalid)
	}
	pk, err := d.patientKey(ctx, a.facts)
	if err != nil {
		return Consent{}, d.auditFailure(ctx, a, err)
	}
	now := d.now()
	sealed := pk.Seal(keys.Field{Table: "phi_consents", Record: consentID, Name: "withdraw_reason"}, []byte(reason))
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE phi_consents SET withdrawn_at = ?, withdrawn_by = ?, withdraw_reason = ? WHERE id = ? AND withdrawn_at IS NULL`,
			now.UnixNano(), by, sealed, consentID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: consent %s was already withdrawn", ErrInvalid, consentID)
		}
		if err := refreshTerms(ctx, tx, a.facts.ID); err != nil {
			return err
		}
		_, err = d.log.AppendTx(ctx, tx, d.event(a, audit.Success, "consent "+consentID+" withdrawn"))
		return err
	})
	if err != nil {
		return Consent{}, fmt.Errorf("withdraw consent: %w", err)
	}
	cs, err := queryConsents(ctx, d.db, pk, `WHERE id = ?`, consentID)
	if err != nil || len(cs) == 0 {
		return Consent{}, fmt.Errorf("read consent %s: %w", consentID, err)
	}
	cs[0].Pseudonym = a.facts.Pseudonym
	return cs[0], nil
}

// Consents returns a patient's consent records, newest first, withdrawn
// ones included (the history).
func (d *Door) Consents(ctx context.Context, req Request, patientID string) ([]Consent, error) {
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return nil, err
	}
	a := &access{req: req, action: ActionRead, class: ClassConsent, facts: facts, resource: "Patient/" + facts.Pseudonym + "/consent"}
	if err := d.authorize(ctx, a); err != nil {
		return nil, err
	}
	return d.readConsents(ctx, a)
}

func (d *Door) readConsents(ctx context.Context, a *access) ([]Consent, error) {
	pk, err := d.patientKey(ctx, a.facts)
	if err != nil {
		return nil, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return nil, err
	}
	cs, err := queryConsents(ctx, d.db, pk, `WHERE patient_id = ?`, a.facts.ID)
	for i := range cs {
		cs[i].Pseudonym = a.facts.Pseudonym
	}
	return cs, err
}

const consentColumns = `id, patient_id, purpose, permit, classes, from_at, until_at, form_ref, recorded_by, recorded_at, withdrawn_at, withdrawn_by, withdraw_reason`

// queryConsents reads consent records; with a key it unseals the form
// reference and withdrawal reason, without one it leaves them empty.
func queryConsents(ctx context.Context, q store.Querier, pk *keys.PatientKey, where string, args ...any) ([]Consent, error) {
	rows, err := q.Query(ctx, `SELECT `+consentColumns+` FROM phi_consents `+where+` ORDER BY recorded_at DESC, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read consents: %w", err)
	}
	defer rows.Close()
	var out []Consent
	for rows.Next() {
		c, err := scanConsent(rows, pk)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func scanConsent(row scanner, pk *keys.PatientKey) (Consent, error) {
	var c Consent
	var permit int
	var classes string
	var from, recorded int64
	var until, withdrawn *int64
	var form, why []byte
	if err := row.Scan(&c.ID, &c.PatientID, &c.Purpose, &permit, &classes, &from, &until, &form, &c.RecordedBy, &recorded, &withdrawn, &c.WithdrawnBy, &why); err != nil {
		return Consent{}, err
	}
	c.Permit, c.Classes = permit != 0, splitList(classes)
	c.From, c.Until, c.RecordedAt, c.WithdrawnAt = time.Unix(0, from), fromNanos(until), time.Unix(0, recorded), fromNanos(withdrawn)
	if pk == nil {
		return c, nil
	}
	var err error
	if c.FormRef, err = openOptional(pk, c.ID, "form_ref", form); err != nil {
		return Consent{}, err
	}
	c.WithdrawReason, err = openOptional(pk, c.ID, "withdraw_reason", why)
	return c, err
}

func openOptional(pk *keys.PatientKey, id, name string, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	b, err := pk.Open(keys.Field{Table: "phi_consents", Record: id, Name: name}, sealed)
	return string(b), err
}
