package hospital

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/anomaly"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// policyDecider puts the Cedar engine behind the door: it turns the door's
// question into an access.Request — staff, patient, consents, break-glass
// session, time-boxed grants, legal basis, same-surname and co-worker — and
// the engine's decision back.
type policyDecider struct {
	engine *access.Engine
	staff  *identity.Directory
	clock  atomic.Pointer[func() time.Time]
}

func (p *policyDecider) now() time.Time { return (*p.clock.Load())() }

func (p *policyDecider) setClock(now func() time.Time) { p.clock.Store(&now) }

func (p *policyDecider) Decide(ctx context.Context, q records.Question) records.Decision {
	d := p.decide(ctx, q)
	return records.Decision{Allow: d.Allow, Flags: d.Flags, Policies: d.Policies, Reasons: append(d.Reasons, d.Errors...)}
}

// decide asks the engine and, when a maintainer's grant opened the record,
// notes that the grant was used (for the access review).
func (p *policyDecider) decide(ctx context.Context, q records.Question) access.Decision {
	r := p.request(q)
	if maintainer(q.Who.Role) {
		grants, err := p.grants(ctx, q.Who.ID, r.Now)
		if err != nil {
			return access.Decision{Reasons: []string{"the user's grants could not be read; medsec denies when in doubt"}, Errors: []string{err.Error()}}
		}
		r.Grants = grants
	}
	d := p.engine.Decide(r)
	if d.Allow && d.HasFlag(access.FlagGrant) {
		p.touchGrants(ctx, r)
	}
	return d
}

// request builds the engine's request from the door's question.
func (p *policyDecider) request(q records.Question) access.Request {
	r := access.Request{
		Staff: access.Staff{ID: q.Who.ID, Role: access.Role(q.Who.Role), Department: q.Who.Department,
			Position: q.Who.Position, Wards: q.Who.Wards, MFA: q.Who.MFA},
		Action:      access.Action(q.Action),
		DataClass:   access.DataClass(q.Class),
		Purpose:     access.Purpose(q.Purpose),
		LegalBasis:  q.LegalBasis,
		SameSurname: q.SameSurname,
		CoWorker:    q.CoWorker,
		Now:         p.now(),
	}
	if q.Who.Role == identity.RoleSystem {
		r.Staff.Position = q.Who.Username // the job: ingest, import, lifecycle
	}
	r.Patient = patientOf(q.Patient)
	r.BreakGlass = breakGlassOf(q)
	return r
}

// wholeLog stands for "every patient" in a question about no one patient
// (a security officer searching the whole access log).
const wholeLog = "*"

func patientOf(f *records.PatientFacts) access.Patient {
	if f == nil {
		return access.Patient{ID: wholeLog}
	}
	pt := access.Patient{ID: f.ID, Department: f.Department, Ward: f.Ward,
		Attending: f.Attending, CareTeam: f.CareTeam, ActiveEncounter: f.ActiveEncounter}
	for _, l := range f.Labels {
		pt.Labels = append(pt.Labels, access.Label(l))
	}
	for _, c := range f.Consents {
		ac := access.Consent{Purpose: access.Purpose(c.Purpose), Permit: c.Permit, From: c.From, Until: c.Until}
		for _, cl := range c.Classes {
			ac.DataClasses = append(ac.DataClasses, access.DataClass(cl))
		}
		pt.Consents = append(pt.Consents, ac)
	}
	return pt
}

// breakGlassOf passes the session the door recorded, with its real times.
// A request that breaks the glass without a session (the door could not
// open one) is passed as claimed with no times, which the policy refuses
// and flags.
func breakGlassOf(q records.Question) access.BreakGlass {
	switch {
	case q.Emergency != nil:
		reason := q.BreakGlass
		if reason == "" {
			reason = q.Emergency.Reason
		}
		return access.BreakGlass{Reason: reason, Started: q.Emergency.Started, Expires: q.Emergency.Expires}
	case q.BreakGlass != "":
		return access.BreakGlass{Reason: q.BreakGlass}
	}
	return access.BreakGlass{}
}

// maintainer: the roles whose access to patient data rests on grants. Only
// their grants are read, so other decisions cost no query.
func maintainer(role string) bool {
	return role == identity.RoleITAdmin || role == identity.RoleExternalMaintainer
}

func (p *policyDecider) grants(ctx context.Context, staffID string, now time.Time) ([]access.Grant, error) {
	if p.staff == nil {
		return nil, errors.New("no staff directory to read grants from")
	}
	gs, err := p.staff.ActiveGrants(ctx, staffID, now)
	if err != nil {
		return nil, fmt.Errorf("read grants of %s: %w", staffID, err)
	}
	out := make([]access.Grant, 0, len(gs))
	for _, g := range gs {
		ag := access.Grant{ID: g.ID, Scopes: []string{g.What}, Systems: g.Systems, From: g.From, Until: g.Until}
		if g.Patient != "" {
			ag.Patients = []string{g.Patient}
		}
		out = append(out, ag)
	}
	return out, nil
}

// touchGrants records the use of the grants that cover this access. A
// failure to record does not undo the access (the audit log has it).
func (p *policyDecider) touchGrants(ctx context.Context, r access.Request) {
	system := access.SystemOf(r.DataClass)
	for _, g := range r.Grants {
		if !slices.Contains(g.Systems, system) && !slices.Contains(g.Systems, "*") {
			continue
		}
		if len(g.Patients) > 0 && !slices.Contains(g.Patients, r.Patient.ID) {
			continue
		}
		p.staff.TouchGrant(ctx, g.ID, r.Now)
	}
}

// newDecider loads the shipped Cedar policies; a policy that does not
// validate stops start-up with file, line and reason.
func newDecider(staff *identity.Directory) (*policyDecider, error) {
	e, err := access.LoadShipped()
	if err != nil {
		return nil, err
	}
	p := &policyDecider{engine: e, staff: staff}
	p.setClock(time.Now)
	return p, nil
}

// SetClock makes the door, the policy, the staff directory and the alert
// inbox read time from now (tests move it: break-glass and grant expiry,
// session timeouts).
func (h *Hospital) SetClock(now func() time.Time) {
	h.decider.setClock(now)
	h.Door.SetClock(now)
	h.Staff.Now = now
	h.Alerts.Now = now
	h.Documents.Now = now
}

// Policy is the loaded access policy.
func (h *Hospital) Policy() *access.Engine { return h.decider.engine }

// ExplainRequest is a what-if question for `medsec policy explain`.
type ExplainRequest struct {
	Username, PatientID, Action, Class, Purpose string
	BreakGlass, LegalBasis                      string
	// MFA says whether to assume a session signed in with a second factor.
	MFA bool
	// Asker names who asks (the operator); the question is audited, since
	// a decision's reasons tell about the patient's labels and consents.
	Asker string
}

// Explain decides a request as the door would, without reading any patient
// data, and returns the full decision. A break-glass is judged as if opened
// now. The question itself is audited (policy.explain, with the patient's
// pseudonym) before the answer is returned.
func (h *Hospital) Explain(ctx context.Context, x ExplainRequest) (access.Decision, error) {
	st, err := h.Staff.Lookup(ctx, x.Username)
	if err != nil {
		return access.Decision{}, err
	}
	facts, err := h.Door.Facts(ctx, x.PatientID)
	if err != nil {
		return access.Decision{}, err
	}
	q := records.Question{Action: x.Action, Class: x.Class, Patient: facts, CoWorker: facts.StaffMember}
	q.Who.Staff, q.Who.MFA = st, x.MFA
	q.Purpose, q.BreakGlass, q.LegalBasis = x.Purpose, x.BreakGlass, x.LegalBasis
	if q.SameSurname, err = h.Door.SameSurname(ctx, st.ID, facts); err != nil {
		return access.Decision{}, err
	}
	if x.BreakGlass != "" {
		now := h.decider.now()
		q.Emergency = &records.BreakGlassSession{Reason: x.BreakGlass, Started: now, Expires: now.Add(records.BreakGlassLimit)}
	}
	d := h.decider.decide(ctx, q)
	asker := x.Asker
	if asker == "" {
		asker = "unknown"
	}
	_, err = h.Audit.Append(ctx, audit.Event{Actor: asker, Action: "policy.explain", Purpose: x.Purpose, Patient: facts.Pseudonym,
		Resource: "Staff/" + st.ID, Outcome: audit.Success, Source: "cli",
		Reason: fmt.Sprintf("explained %s of %s for %s: allow=%v", x.Action, x.Class, x.Purpose, d.Allow)})
	if err != nil {
		return access.Decision{}, err
	}
	return d, nil
}

// Anomalies returns the access-anomaly detector over this installation's
// audit log, raising alerts in its inbox.
func (h *Hospital) Anomalies() *anomaly.Detector {
	return anomaly.New(h.DB, h.Audit.Chain(), h.Alerts)
}

// ResolvePatient accepts a patient's internal id, FHIR id (pt-…) or audit
// pseudonym (P-…) and returns the internal id.
func (h *Hospital) ResolvePatient(ctx context.Context, ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "P-"):
		return h.Door.ResolvePseudonym(ctx, ref)
	case strings.HasPrefix(ref, "pt-"):
		return strings.Replace(ref, "-", "_", 1), nil
	}
	return ref, nil
}
