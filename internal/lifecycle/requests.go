package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
)

// Patients' requests for their own data (PIPA Art. 35–36, HIPAA §164.524
// and §164.528): erasure, a copy of the record and its data map. An
// erasure is received by a member of staff or the portal, which names
// itself in Received; medsec's retention job carries it out. A copy and
// the data map are the patient's own reads through the portal path of the
// door (records.PatientPrincipal).

// PatientRequest is a patient's request as it was received.
type PatientRequest struct {
	PatientID string
	// Reference is the request's number in the hospital's register.
	Reference string
	// Received names who checked the patient's identity (a staff id, the
	// portal).
	Received string
	// By, when set, is the signed-in member of staff who carries the
	// erasure out: the destruction is decided by the policy for them (a
	// security officer with a second factor). Without it, the request came
	// through the patient's own authenticated portal path and the
	// retention job carries it out.
	By *identity.Principal
}

func (r PatientRequest) check() error {
	if err := checkText("request reference", r.Reference, 100); err != nil {
		return err
	}
	if err := checkText("who received the request", r.Received, 100); err != nil {
		return err
	}
	if r.PatientID == "" {
		return fmt.Errorf("%w: the request names no patient", ErrInvalid)
	}
	return nil
}

// RefusedError is an erasure that law or a hold does not allow yet.
type RefusedError struct {
	Patient string // pseudonym
	// Rule names the retention rule or the hold; Basis cites it.
	Rule, Basis string
	// PossibleFrom is the date the erasure becomes possible; zero while a
	// hold stands (it lasts until released).
	PossibleFrom time.Time
}

func (e *RefusedError) Error() string {
	if e.PossibleFrom.IsZero() {
		return fmt.Sprintf("erasure of patient %s refused: legal hold %s (%s) keeps the data until it is released", e.Patient, e.Rule, e.Basis)
	}
	return fmt.Sprintf("erasure of patient %s refused: rule %s (%s) keeps the data until %s; erasure is possible from that date",
		e.Patient, e.Rule, e.Basis, e.PossibleFrom.UTC().Format(time.DateOnly))
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Erasure is a completed erasure.
type Erasure struct {
	Patient   string    `json:"patient"` // pseudonym
	Destroyed time.Time `json:"destroyed"`
	Records   int       `json:"records"`
	// Outside lists copies held by others (recipients of packages) whose
	// destruction was requested.
	Outside []Location `json:"outside,omitempty"`
}

// Erase destroys a patient's data on the patient's request, by
// crypto-shredding, unless a legal hold or a mandatory retention rule
// forbids it now: then the refusal names the rule and the date erasure
// becomes possible, is audited, and nothing is destroyed. Sources that
// hold copies are told (Eraser).
func (e *Engine) Erase(ctx context.Context, r PatientRequest) (Erasure, error) {
	if err := r.check(); err != nil {
		return Erasure{}, err
	}
	h, err := e.cfg.Door.Inventory(ctx, r.PatientID)
	if err != nil {
		return Erasure{}, err
	}
	if h.Destroyed != nil {
		return Erasure{}, fmt.Errorf("erase patient %s: %w", h.Pseudonym, h.Destroyed)
	}
	if refused, err := e.erasureBlocked(ctx, h); refused != nil || err != nil {
		return Erasure{}, e.refuse(ctx, r, refused, err)
	}
	basis := fmt.Sprintf("REQUEST %s (patient's erasure request received by %s)", r.Reference, r.Received)
	req := e.request(JobRetention)
	if r.By != nil {
		req = records.Request{Who: *r.By, Purpose: PurposeOperations}
	}
	// Copies held elsewhere are found while the patient's identifiers can
	// still be matched (some stores link by MRN), then the patient goes.
	out := Erasure{Patient: h.Pseudonym}
	if out.Outside, err = e.eraseOutside(ctx, Subject{PatientID: r.PatientID, Pseudonym: h.Pseudonym}, basis); err != nil {
		return out, err
	}
	d, err := e.cfg.Door.ShredPatients(ctx, req, []string{r.PatientID}, basis)
	if err != nil {
		return Erasure{}, fmt.Errorf("erase patient %s: %w", h.Pseudonym, err)
	}
	if len(d.Denied) > 0 {
		return Erasure{}, fmt.Errorf("erase patient %s: %w: the access policy refused the destruction (see the audit log)", h.Pseudonym, records.ErrDenied)
	}
	out.Destroyed, out.Records = e.cfg.Now(), d.Records
	reason := fmt.Sprintf("request %s: crypto-shredded with %d records; %d copies held outside, their destruction requested", r.Reference, d.Records, len(out.Outside))
	_, err = e.cfg.Audit.Append(ctx, e.event(JobRetention, "patient.erase", h.Pseudonym, "Patient/"+h.Pseudonym, audit.Success, reason))
	return out, err
}

// erasureBlocked returns the refusal that applies now, if any: a hold
// first, else the mandatory rule that keeps the data longest.
func (e *Engine) erasureBlocked(ctx context.Context, h records.Holdings) (*RefusedError, error) {
	holds, err := e.Holds(ctx, false)
	if err != nil {
		return nil, err
	}
	hs := newHoldSet(holds, e.cfg.Schedule)
	classes := append([]records.ClassHolding{{Class: ClassDemographics, Newest: h.LastActivity()}}, h.Classes...)
	var worst *RefusedError
	for _, c := range classes {
		if hold, ok := hs.covers(h.PatientID, c.Class); ok {
			return &RefusedError{Patient: h.Pseudonym, Rule: hold.ID, Basis: hold.Reason}, nil
		}
		rule, ok := e.cfg.Schedule.Rule(c.Class)
		if !ok || !rule.Mandatory {
			continue
		}
		until := rule.Keep.After(c.Newest)
		if until.After(e.cfg.Now()) && (worst == nil || until.After(worst.PossibleFrom)) {
			worst = &RefusedError{Patient: h.Pseudonym, Rule: rule.ID(e.cfg.Schedule.Name), Basis: rule.Basis, PossibleFrom: until}
		}
	}
	return worst, nil
}

func (e *Engine) refuse(ctx context.Context, r PatientRequest, refused *RefusedError, cause error) error {
	if cause != nil {
		return cause
	}
	reason := fmt.Sprintf("request %s: %s", r.Reference, refused.Error())
	if _, err := e.cfg.Audit.Append(ctx, e.event(JobRetention, "patient.erase", refused.Patient, "Patient/"+refused.Patient, audit.Denied, reason)); err != nil {
		return errors.Join(refused, err)
	}
	return refused
}

// eraseOutside tells every Eraser source about the erasure.
func (e *Engine) eraseOutside(ctx context.Context, s Subject, basis string) ([]Location, error) {
	var out []Location
	for _, src := range e.cfg.Sources {
		er, ok := src.(Eraser)
		if !ok {
			continue
		}
		locs, err := er.Erase(ctx, s, basis)
		if err != nil {
			return out, fmt.Errorf("erase copies at %s: %w", src.Kind(), err)
		}
		out = append(out, locs...)
	}
	return out, nil
}

// ExportForPatient gives the patient signed in to the portal a copy of
// their whole record as a FHIR Bundle (identified: it is theirs), as one
// audited export. Their access history is records.Door.AccessHistory.
func (e *Engine) ExportForPatient(ctx context.Context, p records.PatientPrincipal, reference string) ([]byte, error) {
	if err := checkText("request reference", reference, 100); err != nil {
		return nil, err
	}
	x, err := e.cfg.Door.PatientExport(ctx, p, "the patient's copy of their own record, request "+reference)
	if err != nil {
		return nil, err
	}
	b, err := bundle.Build(x, bundle.Options{ID: "export-" + p.Pseudonym, Form: bundle.Identified, Now: e.cfg.Now()})
	if err != nil {
		return nil, err
	}
	return b.JSON, nil
}
