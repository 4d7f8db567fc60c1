// Package provision sends patient data outside the hospital in sealed
// packages and follows every package until its destruction is proven: a
// registry of recipients (pharmacies, pharmaceutical companies, other
// hospitals, government agencies) with their keys and agreements; packages
// assembled through the one door, signed with the hospital's key and
// encrypted to the recipient (filippo.io/age); a ledger entry and a
// disclosure audit event for each; the recipient's side that verifies,
// decrypts and signs a destruction receipt; the hospital's import of
// receipts; and alerts for packages kept past their deadline.
//
// It serves the paper's locations 8 (pharmacy / pharmaceutical company,
// OCS), 10 (other hospitals) and 11 (external agencies), at the
// provision/utilization and destruction/disposal stages, against Table 2's
// threats "forgery and alteration of the information itself" in external
// provision, "medical information illegally provided ... outside the scope
// of medical information protection", data "stored even though it must be
// destroyed" by the receiving institution, and "provision ... for
// destruction by other external organizations".
package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Config assembles a Service.
type Config struct {
	DB    *store.DB
	Door  *records.Door
	Audit *audit.Log
	// Signer is the hospital's signing key (lifecycle.HospitalSigner).
	Signer *lifecycle.Signer
	// Alerts is the security officer's inbox: overdue packages, copies
	// outside after an erasure.
	Alerts *alerts.Inbox
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
	// Render turns an extract into the bundle sent; nil means
	// bundle.Build. internal/deid may plug its pipeline in here.
	Render func(records.Extract, bundle.Options) (bundle.Result, error)
	// Operator names who runs the hospital side (e.g. "cli:root") in
	// audit events of medsec's own.
	Operator string
}

// Service is the hospital's side of provision.
type Service struct {
	db     *store.DB
	door   *records.Door
	log    *audit.Log
	signer *lifecycle.Signer
	alerts *alerts.Inbox
	now    func() time.Time
	render func(records.Extract, bundle.Options) (bundle.Result, error)
	oper   string
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Door == nil || cfg.Audit == nil || cfg.Signer == nil || cfg.Alerts == nil {
		return nil, errors.New("provision: the service needs a database, the door, the audit log, the hospital signer and the alert list")
	}
	s := &Service{db: cfg.DB, door: cfg.Door, log: cfg.Audit, signer: cfg.Signer, alerts: cfg.Alerts,
		now: cfg.Now, render: cfg.Render, oper: cfg.Operator}
	if s.now == nil {
		s.now = time.Now
	}
	if s.render == nil {
		s.render = bundle.Build
	}
	if s.oper == "" {
		s.oper = "local"
	}
	return s, nil
}

// HospitalKey is the verifier key recipients check packages with.
func (s *Service) HospitalKey() string { return s.signer.VerifierKey() }

// Request asks for one package.
type Request struct {
	// Request is who asks and why: its Purpose is the purpose of the
	// provision, decided by the policy (and the patient's consents in it).
	records.Request
	Recipient string
	PatientID string
	Classes   []string
	// Basis is the legal basis, recorded in the ledger and the audit log
	// (e.g. "Infectious Disease Control and Prevention Act Art. 11").
	Basis string
	// Form may ask for less detail than the agreement allows; "" means
	// what the agreement allows.
	Form string
}

// Provided is a sealed package and its ledger entry.
type Provided struct {
	Entry   Entry
	Package []byte
}

// Provide assembles the patient's data of the classes asked for through
// the one door (policy, consent, audit), renders it in the form the
// recipient's agreement allows, signs and encrypts it, and records it in
// the ledger with a disclosure audit event. An unknown recipient, a purpose,
// class or form the agreement does not permit, or a policy refusal stops it
// before anything leaves; every refusal is audited.
func (s *Service) Provide(ctx context.Context, r Request) (Provided, error) {
	r.Classes = uniqueSorted(r.Classes)
	rec, form, err := s.checkAgreement(ctx, r)
	if err != nil {
		return Provided{}, s.refuse(ctx, r, err)
	}
	if len(r.Basis) > 300 || strings.ContainsFunc(r.Basis, isControl) {
		return Provided{}, s.refuse(ctx, r, fmt.Errorf("%w: the legal basis is at most 300 printable characters", ErrInvalid))
	}
	id := newPackageID()
	if r.LegalBasis == "" {
		r.LegalBasis = r.Basis // the policy weighs it for public-health uses
	}
	x, err := s.door.Export(ctx, r.Request, r.PatientID, r.Classes, fmt.Sprintf("provision %s to recipient %s (%s)", id, rec.ID, rec.Kind))
	if err != nil {
		return Provided{}, fmt.Errorf("provide to %s: %w", rec.ID, err)
	}
	e, pkg, err := s.seal(id, rec, form, r, x)
	if err != nil {
		return Provided{}, err
	}
	if err := s.record(ctx, r, e); err != nil {
		return Provided{}, err
	}
	return Provided{Entry: e, Package: pkg}, nil
}

// checkAgreement returns the recipient and the form to send, or why not.
func (s *Service) checkAgreement(ctx context.Context, r Request) (Recipient, string, error) {
	rec, err := s.Recipient(ctx, r.Recipient)
	if err != nil {
		return Recipient{}, "", err
	}
	a := rec.Agreement
	switch {
	case !rec.Disabled.IsZero():
		return rec, "", fmt.Errorf("%w: recipient %s was disabled on %s", ErrNotPermitted, rec.ID, rec.Disabled.UTC().Format(time.DateOnly))
	case !slices.Contains(a.Purposes, r.Purpose):
		return rec, "", fmt.Errorf("%w: recipient %s may receive data for %s, not for %q", ErrNotPermitted, rec.ID, strings.Join(a.Purposes, ", "), r.Purpose)
	case len(r.Classes) == 0:
		return rec, "", fmt.Errorf("%w: name the data classes to send (--what)", ErrInvalid)
	}
	for _, c := range r.Classes {
		if !slices.Contains(a.Classes, c) {
			return rec, "", fmt.Errorf("%w: recipient %s may receive %s, not %q", ErrNotPermitted, rec.ID, strings.Join(a.Classes, ", "), c)
		}
	}
	form := r.Form
	if form == "" {
		form = a.Form
	}
	if !slices.Contains(bundle.Forms, form) || formRank(form) > formRank(a.Form) {
		return rec, "", fmt.Errorf("%w: recipient %s may receive %s data at most, not %q", ErrNotPermitted, rec.ID, a.Form, form)
	}
	return rec, form, nil
}

// refuse audits a refused provision and returns err.
func (s *Service) refuse(ctx context.Context, r Request, err error) error {
	ev := audit.Event{Time: s.now(), Actor: r.Who.ID, Role: r.Who.Role, Action: "provision.disclose", Purpose: r.Purpose,
		Resource: "Recipient/" + truncate(r.Recipient, 60), Outcome: audit.Denied, Source: r.Who.Source, Reason: err.Error()}
	if r.PatientID != "" {
		ev.Patient = s.door.Pseudonym(r.PatientID)
	}
	if ev.Actor == "" {
		ev.Actor = "unauthenticated"
	}
	if _, aerr := s.log.Append(ctx, ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

func (s *Service) seal(id string, rec Recipient, form string, r Request, x records.Extract) (Entry, []byte, error) {
	now := s.now()
	deadline := rec.Agreement.Retention.After(now)
	b, err := s.render(x, bundle.Options{ID: id, Form: form, Now: now})
	if err != nil {
		return Entry{}, nil, fmt.Errorf("render package %s: %w", id, err)
	}
	c := Content{Package: id, From: s.signer.Name(), To: rec.ID, Issued: now.UTC(), Purpose: r.Purpose, Basis: r.Basis,
		Form: form, Classes: r.Classes, DestroyBy: deadline.UTC(), Bundle: b.JSON, Withheld: b.Withheld,
		Instruction: fmt.Sprintf("Use for %s only. Destroy every copy by %s and send a signed destruction receipt (medsec package receipt).",
			r.Purpose, deadline.UTC().Format(time.RFC3339))}
	to, err := age.ParseX25519Recipient(rec.AgeRecipient)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("recipient %s: %w", rec.ID, err)
	}
	pkg, _, err := Seal(c, to, s.signer, now)
	if err != nil {
		return Entry{}, nil, err
	}
	e := Entry{ID: id, Recipient: rec.ID, RecipientName: rec.Name, RecipientKind: rec.Kind, Patient: x.Pseudonym,
		Purpose: r.Purpose, Basis: r.Basis, Classes: r.Classes, Form: form, RequestedBy: r.Who.ID, Created: now,
		Deadline: deadline, Digest: digest(pkg), Size: int64(len(pkg)), Withheld: b.Withheld}
	return e, pkg, nil
}
