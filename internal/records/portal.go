package records

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// The patient portal's path through the door (location 9: patients see who
// read their record and give or withdraw consent). The access policy
// speaks of staff only, so a patient is not a policy principal: the door
// itself lets a patient see their own access history and consents, and
// nothing of anyone else. The registration desk hands the patient a portal
// token (a decided, audited write); only its SHA-256 is stored.

// PurposePatientRequest is the purpose recorded for a patient's own
// requests (HL7 PurposeOfUse PATRQT, "patient requested").
const PurposePatientRequest = "PATRQT"

// MaxPortalAccess bounds how long a portal token lives.
const MaxPortalAccess = 90 * 24 * time.Hour

const portalPrefix = "mpp1_"

// PatientPrincipal is a patient signed in to the portal. Only the door
// makes one, from a valid portal token.
type PatientPrincipal struct {
	Pseudonym string
	Source    string
	Expires   time.Time
	patientID string
	verified  bool
}

// Verified reports whether p came from AuthenticatePatient.
func (p PatientPrincipal) Verified() bool { return p.verified }

// IsPortalToken reports whether a bearer token has the form of a portal
// token (the API then authenticates a patient rather than staff).
func IsPortalToken(token string) bool { return strings.HasPrefix(token, portalPrefix) }

func portalHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// IssuePortalAccess gives a patient a portal token valid for ttl (at most
// MaxPortalAccess). The token is returned once.
func (d *Door) IssuePortalAccess(ctx context.Context, req Request, patientID string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 || ttl > MaxPortalAccess {
		return "", time.Time{}, fmt.Errorf("%w: portal access lasts between a second and %s", ErrInvalid, MaxPortalAccess)
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return "", time.Time{}, err
	}
	a := &access{req: req, action: ActionWrite, class: ClassDemographics, facts: facts, resource: "Portal/" + facts.Pseudonym}
	if err := d.authorize(ctx, a); err != nil {
		return "", time.Time{}, err
	}
	if facts.Destroyed { // say when and why, rather than issue a token that cannot sign in
		if _, err = d.patientKey(ctx, facts); err == nil {
			err = fmt.Errorf("%w: patient %s was destroyed", ErrNotFound, facts.Pseudonym)
		}
		return "", time.Time{}, d.auditFailure(ctx, a, err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := portalPrefix + base64.RawURLEncoding.EncodeToString(raw)
	now := d.now()
	expires := now.Add(ttl)
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO phi_portal_tokens (token_hash, patient_id, issued_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			portalHash(token), patientID, req.Who.ID, now.UnixNano(), expires.UnixNano()); err != nil {
			return err
		}
		_, err := d.log.AppendTx(ctx, tx, d.event(a, audit.Success, "patient portal access issued until "+expires.UTC().Format(time.RFC3339)))
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue portal access: %w", err)
	}
	return token, expires, nil
}

// AuthenticatePatient checks a portal token. Errors wrap
// ErrUnauthenticated and say why (unknown, expired, revoked, destroyed).
func (d *Door) AuthenticatePatient(ctx context.Context, token, source string) (PatientPrincipal, error) {
	if !IsPortalToken(token) || len(token) != len(portalPrefix)+43 {
		return PatientPrincipal{}, fmt.Errorf("%w: not a portal token", ErrUnauthenticated)
	}
	var patientID string
	var expires int64
	var revoked *int64
	err := d.db.QueryRow(ctx, `SELECT patient_id, expires_at, revoked_at FROM phi_portal_tokens WHERE token_hash = ?`, portalHash(token)).
		Scan(&patientID, &expires, &revoked)
	if errors.Is(err, store.ErrNotFound) {
		return PatientPrincipal{}, fmt.Errorf("%w: unknown portal token", ErrUnauthenticated)
	}
	if err != nil {
		return PatientPrincipal{}, fmt.Errorf("read portal token: %w", err)
	}
	switch {
	case revoked != nil:
		return PatientPrincipal{}, fmt.Errorf("%w: the portal token was revoked", ErrUnauthenticated)
	case !d.now().Before(time.Unix(0, expires)):
		return PatientPrincipal{}, fmt.Errorf("%w: the portal token expired; ask the registration desk for a new one", ErrUnauthenticated)
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil || facts.Destroyed {
		return PatientPrincipal{}, fmt.Errorf("%w: the record of this portal token no longer exists", ErrUnauthenticated)
	}
	return PatientPrincipal{Pseudonym: facts.Pseudonym, Source: source, Expires: time.Unix(0, expires), patientID: patientID, verified: true}, nil
}

// patientEvent is the audit event of a patient's own request.
func (d *Door) patientEvent(p PatientPrincipal, action, resource, outcome, reason string) audit.Event {
	return audit.Event{Time: d.now(), Actor: "patient:" + p.Pseudonym, Role: "patient", Action: action,
		Purpose: PurposePatientRequest, Patient: p.Pseudonym, Resource: resource, Outcome: outcome, Source: p.Source, Reason: reason}
}

// AccessHistory returns the access log of the patient's own record: every
// event that names their pseudonym, newest last. Reading it is audited.
func (d *Door) AccessHistory(ctx context.Context, p PatientPrincipal, f AuditFilter) ([]audit.Event, error) {
	if !p.verified {
		return nil, ErrUnauthenticated
	}
	if _, err := d.log.Append(ctx, d.patientEvent(p, "audit.read", "Patient/"+p.Pseudonym+"/audit", audit.Success, "the patient read their access history")); err != nil {
		return nil, fmt.Errorf("audit before data: %w", err)
	}
	f.pseudonym = p.Pseudonym
	return d.scanAudit(ctx, f)
}

// PatientConsents returns the patient's own consent records (history
// included).
func (d *Door) PatientConsents(ctx context.Context, p PatientPrincipal) ([]Consent, error) {
	if !p.verified {
		return nil, ErrUnauthenticated
	}
	facts, err := d.facts(ctx, d.db, p.patientID)
	if err != nil {
		return nil, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return nil, err
	}
	if _, err := d.log.Append(ctx, d.patientEvent(p, "consent.read", "Patient/"+p.Pseudonym+"/consent", audit.Success, "")); err != nil {
		return nil, fmt.Errorf("audit before data: %w", err)
	}
	cs, err := queryConsents(ctx, d.db, pk, `WHERE patient_id = ?`, p.patientID)
	for i := range cs {
		cs[i].Pseudonym = p.Pseudonym
	}
	return cs, err
}

// PatientWithdrawConsent lets the patient withdraw one of their own
// consents; it takes effect at once.
func (d *Door) PatientWithdrawConsent(ctx context.Context, p PatientPrincipal, consentID, reason string) (Consent, error) {
	if !p.verified {
		return Consent{}, ErrUnauthenticated
	}
	owner, err := d.consentPatient(ctx, consentID)
	if err != nil || owner != p.patientID {
		// Another patient's consent is "not found", never "forbidden".
		return Consent{}, fmt.Errorf("%w: consent %s", ErrNotFound, consentID)
	}
	facts, err := d.facts(ctx, d.db, p.patientID)
	if err != nil {
		return Consent{}, err
	}
	a := &access{req: Request{Purpose: PurposePatientRequest}, action: ActionWrite, class: ClassConsent, facts: facts,
		resource: "Consent/" + consentID}
	a.req.Who.ID, a.req.Who.Role, a.req.Who.Source = "patient:"+p.Pseudonym, "patient", p.Source
	a.decision = Decision{Allow: true, Reasons: []string{"patients withdraw their own consent"}}
	return d.withdraw(ctx, a, consentID, "patient:"+p.Pseudonym, reason)
}

// PatientRecordConsent lets the patient give (or refuse) consent to a
// purpose of use for their own data; it takes effect at the next decision.
func (d *Door) PatientRecordConsent(ctx context.Context, p PatientPrincipal, c Consent) (Consent, error) {
	if !p.verified {
		return Consent{}, ErrUnauthenticated
	}
	if c.From.IsZero() {
		c.From = d.now()
	}
	c.Classes = uniqueSorted(c.Classes)
	if err := checkConsent(&c); err != nil {
		return Consent{}, err
	}
	facts, err := d.facts(ctx, d.db, p.patientID)
	if err != nil {
		return Consent{}, err
	}
	who := "patient:" + p.Pseudonym
	c.ID, c.PatientID, c.Pseudonym = newID("cs_"), p.patientID, facts.Pseudonym
	c.RecordedBy, c.RecordedAt = who, d.now()
	c.WithdrawnAt, c.WithdrawnBy, c.WithdrawReason = time.Time{}, "", ""
	a := &access{req: Request{Purpose: PurposePatientRequest}, action: ActionWrite, class: ClassConsent, facts: facts,
		resource: "Consent/" + c.ID}
	a.req.Who.ID, a.req.Who.Role, a.req.Who.Source = who, "patient", p.Source
	a.decision = Decision{Allow: true, Reasons: []string{"patients give their own consent"}}
	return d.storeConsent(ctx, a, c)
}
