// Package records is the one door to patient data (DESIGN rule 1). Every
// read and write of a patient's identifying fields or clinical records goes
// through a Door, which in this order: takes an authenticated principal,
// asks the policy for a decision, writes the audit event (durably, before
// any data leaves), and only then unseals. Nothing else in medsec touches
// the phi_* tables; a test enforces it.
//
// It serves the paper's locations 4 and 6 (HIS and main server: access
// control, user identification, information encryption) and the patient
// side of every other location.
package records

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Sentinel errors callers branch on.
var (
	// ErrDenied means the policy refused the access; the *DeniedError
	// carries the decision and its reasons. HTTP 403. The denial is audited.
	ErrDenied = errors.New("access denied")
	// ErrNotFound means no such patient or record. HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrUnauthenticated means the request carried no authenticated
	// principal. HTTP 401.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrInvalid means the input was refused before anything was stored;
	// the message says what to fix. HTTP 400.
	ErrInvalid = errors.New("invalid input")
)

// Actions the door asks the policy about.
const (
	ActionRead    = "read"
	ActionWrite   = "write"
	ActionSearch  = "search"
	ActionExport  = "export"
	ActionDestroy = "destroy"
)

// Data classes.
const (
	ClassDemographics = "demographics"
	ClassObservation  = "observation"
	ClassEncounter    = "encounter"
	ClassNote         = "note"
	ClassOrder        = "order"
	ClassMedication   = "medication"
	ClassImaging      = "imaging"
	ClassConsent      = "consent"
)

// Request says who asks and why. Who must come from identity.
type Request struct {
	Who        identity.Principal
	Purpose    string // HL7 PurposeOfUse: TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH, …
	BreakGlass string // the typed reason of an emergency access, or ""
	// LegalBasis names the law or order that allows a public-health use
	// without consent (PUBHLTH only; "" when there is none).
	LegalBasis string
}

// Question is what the door asks the policy.
type Question struct {
	Request
	Action  string
	Class   string
	Patient *PatientFacts // nil for a question about no one patient (a search of the whole access log)
	// Emergency is the break-glass session in force for this user and
	// patient (nil when none was opened); its times are the real ones.
	Emergency *BreakGlassSession
	// SameSurname: the patient shares the user's surname (compared by
	// keyed digests). CoWorker: the patient is a member of staff.
	SameSurname, CoWorker bool
}

// PatientFacts are the non-identifying attributes a decision weighs: where
// the patient is cared for and by whom, and the sensitivity labels.
type PatientFacts struct {
	ID, Pseudonym, Department, Ward string
	Labels                          []string
	// Attending is the staff id of the attending physician; CareTeam the
	// staff ids of the care team; ActiveEncounter whether the patient is
	// in an encounter in Department now.
	Attending       string
	CareTeam        []string
	ActiveEncounter bool
	Destroyed       bool
	// Consents are the terms of the patient's consent records (withdrawn
	// ones end at their withdrawal), for the policy to judge at its "now".
	Consents []ConsentTerm
	// StaffMember is true when the patient is a member of staff.
	StaffMember bool
	surname     []byte // keyed digest of the surname, nil if unknown
}

// Decision is the policy's answer: a value with reasons a person can read,
// written into the audit log as it is.
type Decision struct {
	Allow    bool     `json:"allow"`
	Flags    []string `json:"flags,omitempty"`
	Policies []string `json:"policies,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// Decider decides accesses. The Cedar engine in package access is the
// production one.
type Decider interface {
	Decide(ctx context.Context, q Question) Decision
}

// DeniedError is a refused access.
type DeniedError struct{ Decision Decision }

func (e *DeniedError) Error() string {
	if len(e.Decision.Reasons) == 0 {
		return "access denied by policy"
	}
	return "access denied: " + strings.Join(e.Decision.Reasons, "; ")
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Door is the one door to patient data.
type Door struct {
	db       *store.DB
	keys     *keys.Keyring
	log      *audit.Log
	decider  Decider
	alerts   *alerts.Inbox
	pseudKey []byte
	indexKey []byte
	now      func() time.Time
	surnames surnameCache
	// labelMACs pools HMACs keyed with indexKey (see labelMAC).
	labelMACs sync.Pool
}

// Config assembles a Door.
type Config struct {
	DB      *store.DB
	Keys    *keys.Keyring
	Audit   *audit.Log
	Decider Decider
	// Alerts receives the break-glass alerts for the security officer's
	// review; without it the door refuses break-glass.
	Alerts *alerts.Inbox
	// PseudonymKey makes the audit pseudonyms; IndexKey the blind indexes
	// used to find a patient by an identifier without storing it.
	PseudonymKey, IndexKey []byte
	Now                    func() time.Time
}

// New returns a Door.
func New(cfg Config) (*Door, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Audit == nil || cfg.Decider == nil || len(cfg.PseudonymKey) < 32 || len(cfg.IndexKey) < 32 {
		return nil, errors.New("records: the door needs a database, keys, an audit log, a decider and two 32-byte keys")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Door{db: cfg.DB, keys: cfg.Keys, log: cfg.Audit, decider: cfg.Decider, alerts: cfg.Alerts,
		pseudKey: cfg.PseudonymKey, indexKey: cfg.IndexKey, now: cfg.Now}, nil
}

// Pseudonym is the patient's name in the audit log: a keyed hash of the
// internal id, stable for the installation, never PHI.
func (d *Door) Pseudonym(patientID string) string {
	m := hmac.New(sha256.New, d.pseudKey)
	m.Write([]byte(patientID))
	return "P-" + strings.ToLower(base32.StdEncoding.EncodeToString(m.Sum(nil))[:12])
}

func (d *Door) blindIndex(kind, value string) []byte {
	m := hmac.New(sha256.New, d.indexKey)
	m.Write([]byte(kind + "\x00" + value))
	return m.Sum(nil)
}

// access is one decided access on its way to the audit log.
type access struct {
	req      Request
	action   string
	class    string
	facts    *PatientFacts
	resource string
	decision Decision
	glass    *BreakGlassSession
}

// authorize checks authentication and asks the policy. A denial is audited
// and returned as *DeniedError.
func (d *Door) authorize(ctx context.Context, a *access) error {
	if !a.req.Who.Verified() {
		return ErrUnauthenticated
	}
	q, err := d.question(ctx, a)
	if err != nil {
		return err
	}
	a.decision = d.decider.Decide(ctx, q)
	if a.decision.Allow {
		return nil
	}
	if _, err := d.log.Append(ctx, d.event(a, audit.Denied, strings.Join(a.decision.Reasons, "; "))); err != nil {
		return err
	}
	return &DeniedError{Decision: a.decision}
}

// question gathers what the policy weighs beyond the request and the
// patient: the break-glass session (opened here if the request breaks the
// glass), and the same-surname and co-worker flags.
func (d *Door) question(ctx context.Context, a *access) (Question, error) {
	q := Question{Request: a.req, Action: a.action, Class: a.class, Patient: a.facts}
	if a.facts == nil {
		return q, nil
	}
	q.CoWorker = a.facts.StaffMember
	var err error
	if q.SameSurname, err = d.SameSurname(ctx, a.req.Who.ID, a.facts); err != nil {
		return q, err
	}
	if a.req.BreakGlass != "" {
		g, err := d.breakGlass(ctx, a, q)
		if err != nil {
			return q, err
		}
		a.glass, q.Emergency = g, g
	}
	return q, nil
}

// event builds the audit event of an access.
func (d *Door) event(a *access, outcome, reason string) audit.Event {
	ev := audit.Event{Time: d.now(), Actor: a.req.Who.ID, Role: a.req.Who.Role,
		Action: a.class + "." + a.action, Purpose: a.req.Purpose, Resource: a.resource,
		Outcome: outcome, Source: a.req.Who.Source, Reason: reason, Flags: a.decision.Flags}
	if a.facts != nil {
		ev.Patient = a.facts.Pseudonym
	}
	if a.req.BreakGlass != "" {
		if !slices.Contains(ev.Flags, "break-glass") {
			ev.Flags = append(ev.Flags, "break-glass")
		}
		if reason == "" {
			ev.Reason = "under break-glass" // the typed reason stays sealed
		}
	}
	if b, err := json.Marshal(a.decision); err == nil {
		ev.Decision = b
	}
	return ev
}

// auditRead makes the event of an allowed read durable; only then may data
// leave. If the log cannot be written the read fails.
func (d *Door) auditRead(ctx context.Context, a *access, reason string) error {
	if _, err := d.log.Append(ctx, d.event(a, audit.Success, reason)); err != nil {
		return fmt.Errorf("audit before data: %w", err)
	}
	return nil
}

// auditFailure records an allowed access that could not be served (for
// instance, a destroyed patient).
func (d *Door) auditFailure(ctx context.Context, a *access, cause error) error {
	if _, err := d.log.Append(ctx, d.event(a, audit.Failed, cause.Error())); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// SetClock makes the door read time from now (tests: break-glass expiry,
// consent periods).
func (d *Door) SetClock(now func() time.Time) { d.now = now }
