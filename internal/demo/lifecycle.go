package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/synth"
)

// The end of the life cycle: sealed provision to a pharmacy, another
// hospital and an agency (locations 8, 10, 11), the pharmacy's side and its
// destruction receipt, a patient's erasure request with the data map
// before and after.

// ProvisionReport shows the three provision flows.
type ProvisionReport struct {
	Opened          bool         `json:"opened"`
	TamperDetected  bool         `json:"tamper_detected"`
	ReceiptImported bool         `json:"receipt_imported"`
	TamperError     string       `json:"tamper_error,omitempty"`
	Flows           []FlowReport `json:"flows"`
}

// FlowReport is one package sent (or refused).
type FlowReport struct {
	Recipient string `json:"recipient"`
	Kind      string `json:"kind"`
	Purpose   string `json:"purpose"`
	Form      string `json:"form,omitempty"`
	Package   string `json:"package,omitempty"`
	Outcome   string `json:"outcome"`
}

// ErasureReport shows a patient's erasure request carried out.
type ErasureReport struct {
	Patient       string `json:"patient"`
	Records       int    `json:"records"`
	CopiesOutside int    `json:"copies_outside"`
	PlaintextLeft int    `json:"plaintext_left"`
	AuditVerified bool   `json:"audit_verified"`
	// Refused is the answer to a patient whose data law still keeps.
	Refused string `json:"refused"`
	// BackupsUnreadable: after the erasure the key-encryption key was
	// rotated, so backups made before it cannot open the patient's key.
	BackupsUnreadable bool `json:"backups_unreadable"`
}

// TraceReport is the erased patient's data map before and after.
type TraceReport struct {
	Patient string   `json:"patient"`
	Before  []string `json:"before"`
	After   []string `json:"after"`
}

// lifeParts are the life-cycle services of the demo hospital.
type lifeParts struct {
	engine   *lifecycle.Engine
	prov     *provision.Service
	pharmacy provision.RecipientKeys
	kimMFA   identity.Principal
	former   records.Patient
	needles  [][]byte // the former patient's identifying values
}

func (s *scenario) openLife(ctx context.Context) error {
	schedule, _, err := lifecycle.Profile(s.h.Config.Jurisdiction)
	if err != nil {
		return err
	}
	engine, err := lifecycle.New(ctx, lifecycle.Config{DB: s.h.DB, Door: s.h.Door, Audit: s.h.Audit, Keys: s.h.Keys,
		HospitalID: s.h.Config.Hospital.ID, Schedule: schedule, Operator: "demo"})
	if err != nil {
		return err
	}
	prov, err := provision.New(provision.Config{DB: s.h.DB, Door: s.h.Door, Audit: s.h.Audit, Signer: engine.Signer(),
		Alerts: s.h.Alerts, Operator: "demo"})
	if err != nil {
		return err
	}
	engine.AddSource(prov)
	// Imaging media held in quarantine for a patient go with the patient.
	intake, err := imaging.New(ctx, imaging.Config{DB: s.h.DB, Keys: s.h.Keys, Audit: s.h.Audit, Door: s.h.Door, Alerts: s.h.Alerts})
	if err != nil {
		return err
	}
	engine.AddSource(intake)
	s.life = &lifeParts{engine: engine, prov: prov}
	return nil
}

// signInWithSecondFactor: exports need a session with a second factor, so
// Dr. Kim enrols an authenticator and signs in with a code.
func (s *scenario) signInWithSecondFactor(ctx context.Context) error {
	kim := s.staff["dr.kim"]
	enrol, err := s.h.Staff.EnrolTOTP(ctx, kim, kim.ID)
	if err != nil {
		return err
	}
	// From now on Dr. Kim's sign-in asks for a code: the report gives the
	// secret, so the account can still be used after the demo (--serve).
	for i := range s.rep.Staff {
		if s.rep.Staff[i].Username == kim.Username {
			s.rep.Staff[i].TOTPSecret = enrol.Secret
		}
	}
	code, err := totp.GenerateCode(enrol.Secret, time.Now())
	if err != nil {
		return err
	}
	_, token, err := s.h.Staff.Login(ctx, identity.LoginRequest{Username: kim.Username, Password: s.password("dr.kim"), TOTP: code, Source: "demo"})
	if err != nil {
		return err
	}
	s.life.kimMFA, err = s.h.Staff.Sessions.Authenticate(ctx, token, "demo")
	return err
}

func (s *scenario) password(user string) string {
	for _, st := range s.rep.Staff {
		if st.Username == user {
			return st.Password
		}
	}
	return ""
}

var demoRecipients = []struct {
	id, name, kind, form string
	purposes, classes    []string
	keep                 lifecycle.Period
}{
	{"pharmacy-seoul", "Seoul Station Pharmacy", provision.KindPharmacy, bundle.Identified, []string{"TREAT"}, []string{"demographics", "medication"}, lifecycle.Period{Days: 30}},
	{"hospital-busan", "Busan University Hospital", provision.KindHospital, bundle.Identified, []string{"TREAT"}, []string{"demographics", "observation", "note", "medication"}, lifecycle.Period{Years: 1}},
	{"kdca", "Korea Disease Control and Prevention Agency", provision.KindAgency, bundle.Deidentified, []string{"PUBHLTH"}, []string{"demographics", "observation"}, lifecycle.Period{Years: 1}},
}

func (s *scenario) registerRecipients(ctx context.Context) error {
	for _, r := range demoRecipients {
		k, err := provision.GenerateRecipientKeys(r.id)
		if err != nil {
			return err
		}
		_, err = s.life.prov.AddRecipient(ctx, identity.System("demo"), provision.Recipient{ID: r.id, Name: r.name, Kind: r.kind,
			AgeRecipient: k.AgeRecipient, ReceiptKey: k.ReceiptKey,
			Agreement: provision.Agreement{Purposes: r.purposes, Classes: r.classes, Form: r.form, Retention: r.keep, Reference: "DEMO-" + r.id}})
		if err != nil {
			return err
		}
		if r.kind == provision.KindPharmacy {
			s.life.pharmacy = k
		}
	}
	s.opt.Log("registered a pharmacy, another hospital and a disease-control agency with their keys and agreements")
	return nil
}

// prescriptionJSON is a FHIR MedicationRequest.
func prescriptionJSON(patientRef string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":%q},"authoredOn":%q,`+
		`"medicationCodeableConcept":{"coding":[{"system":"http://www.whocc.no/atc","code":"C09AA05","display":"ramipril"}]},`+
		`"dosageInstruction":[{"text":"5 mg once daily"}],"dispenseRequest":{"quantity":{"value":30,"unit":"tablet"}}}`, patientRef, at.UTC().Format(time.RFC3339)))
}

// providePrescription: Dr. Kim prescribes, the package goes to the
// pharmacy, which opens it, sees a one-byte change detected, destroys it
// and sends its receipt, which the hospital imports.
func (s *scenario) providePrescription(ctx context.Context) error {
	if err := s.openLife(ctx); err != nil {
		return err
	}
	if err := s.signInWithSecondFactor(ctx); err != nil {
		return err
	}
	if err := s.registerRecipients(ctx); err != nil {
		return err
	}
	p := s.patient[0]
	rx := records.Record{Class: records.ClassMedication, Code: "C09AA05", Effective: time.Now(), Source: "staff:dr.kim", Payload: prescriptionJSON("Patient/"+p.Pseudonym, time.Now())}
	if _, err := s.h.Door.AddRecords(ctx, records.Request{Who: s.staff["dr.kim"], Purpose: "TREAT"}, p.ID, []records.Record{rx}); err != nil {
		return err
	}
	out, err := s.life.prov.Provide(ctx, provision.Request{Request: records.Request{Who: s.life.kimMFA, Purpose: "TREAT"},
		Recipient: "pharmacy-seoul", PatientID: p.ID, Classes: []string{"medication", "demographics"}})
	s.flow("pharmacy-seoul", provision.KindPharmacy, "TREAT", out, err)
	if err != nil {
		return err
	}
	s.opt.Log("Dr. Kim sent a prescription to the pharmacy: package %s, signed, encrypted to the pharmacy, in the ledger until %s", out.Entry.ID, out.Entry.Deadline.Format(time.DateOnly))
	return s.pharmacySide(ctx, out)
}

func (s *scenario) flow(to, kind, purpose string, out provision.Provided, err error) {
	f := FlowReport{Recipient: to, Kind: kind, Purpose: purpose, Package: out.Entry.ID, Form: out.Entry.Form, Outcome: "sent"}
	if err != nil {
		f.Outcome = "refused: " + err.Error()
	}
	s.rep.Provision.Flows = append(s.rep.Provision.Flows, f)
}

// pharmacySide is what the pharmacy does with its keys only.
func (s *scenario) pharmacySide(ctx context.Context, out provision.Provided) error {
	ids, err := provision.ParseIdentities(s.life.pharmacy.AgeIdentity)
	if err != nil {
		return err
	}
	hospitalKey, err := provision.ParseVerifierKey(s.life.prov.HospitalKey())
	if err != nil {
		return err
	}
	opened, err := provision.Open(out.Package, hospitalKey, ids...)
	if err != nil {
		return fmt.Errorf("%w: the pharmacy could not open its package: %v", errStep, err)
	}
	s.rep.Provision.Opened = opened.Content.Package == out.Entry.ID
	tampered := append([]byte(nil), out.Package...)
	tampered[len(tampered)-40] ^= 0x01
	_, terr := provision.Open(tampered, hospitalKey, ids...)
	s.rep.Provision.TamperDetected = errors.Is(terr, provision.ErrTampered)
	if terr != nil {
		s.rep.Provision.TamperError = terr.Error()
	}
	s.opt.Log("the pharmacy verified and opened it (%d bytes of FHIR); a copy changed by one byte was refused: %v", len(opened.Content.Bundle), terr)
	return s.destroyAtPharmacy(ctx, out, ids)
}

func (s *scenario) destroyAtPharmacy(ctx context.Context, out provision.Provided, ids []age.Identity) error {
	signer, err := provision.ParseSigningKey(s.life.pharmacy.SigningKey)
	if err != nil {
		return err
	}
	receipt, err := provision.MakeReceipt(out.Package, signer, "dispensed; deleted from the pharmacy system and its backups", time.Now(), ids...)
	if err != nil {
		return err
	}
	e, err := s.life.prov.ImportReceipt(ctx, receipt)
	if err != nil {
		return err
	}
	s.rep.Provision.ReceiptImported = e.State(time.Now()) == provision.StateClosed
	s.opt.Log("the pharmacy destroyed it and signed a receipt; the hospital checked it and closed ledger entry %s", e.ID)
	return nil
}

// referAndReport: a former patient is referred to another hospital (the
// package stays open there), and a de-identified report goes to the
// agency. Refusals by the policy are reported, not fatal.
func (s *scenario) referAndReport(ctx context.Context) error {
	g := synth.New(s.opt.Seed + 1)
	person := g.Person()
	kim, lee := s.staff["dr.kim"], s.staff["nurse.lee"]
	former, err := s.h.Door.RegisterPatient(ctx, records.Request{Who: s.staff["reception"], Purpose: "TREAT"}, records.Patient{
		Name: person.Name, RRN: person.RRN, Phone: person.Phone, BirthDate: person.BirthDate, Sex: person.Sex, Address: person.Address,
		MRN: "MRN-099999", Department: "internal_medicine", Ward: "5A", Attending: kim.ID, CareTeam: []string{kim.ID, lee.ID}, ActiveEncounter: true})
	if err != nil {
		return err
	}
	s.life.former = former
	s.life.needles = Needles([]PatientReport{{ID: former.ID, Name: person.Name, RRN: person.RRN, Phone: person.Phone}})
	// Last seen six years ago: the retention periods of the kr profile
	// (five years for results and the register) have passed.
	seen := time.Now().AddDate(-6, 0, 0)
	v := vital{"8480-6", "Systolic blood pressure", "mm[Hg]", 132}
	obs := records.Record{Class: records.ClassObservation, Code: v.loinc, Effective: seen, Source: "staff:dr.kim", Payload: observationJSON("Patient/"+former.Pseudonym, v, seen)}
	if _, err := s.h.Door.AddRecords(ctx, records.Request{Who: kim, Purpose: "TREAT"}, former.ID, []records.Record{obs}); err != nil {
		return err
	}
	ref, err := s.life.prov.Provide(ctx, provision.Request{Request: records.Request{Who: s.life.kimMFA, Purpose: "TREAT"},
		Recipient: "hospital-busan", PatientID: former.ID, Classes: []string{"demographics", "observation"}})
	s.flow("hospital-busan", provision.KindHospital, "TREAT", ref, err)
	rep, err := s.life.prov.Provide(ctx, provision.Request{Request: records.Request{Who: s.life.kimMFA, Purpose: "PUBHLTH"},
		Recipient: "kdca", PatientID: s.patient[0].ID, Classes: []string{"demographics", "observation"},
		Basis: "Infectious Disease Control and Prevention Act Art. 11 (notifiable disease report)"})
	s.flow("kdca", provision.KindAgency, "PUBHLTH", rep, err)
	for _, f := range s.rep.Provision.Flows[1:] {
		s.opt.Log("%s to %s (%s): %s", f.Purpose, f.Recipient, f.Kind, f.Outcome)
	}
	return nil
}

func (s *scenario) traceLines(ctx context.Context) ([]string, error) {
	// The security officer, signed in with a second factor, answers the
	// patient's question.
	req := records.Request{Who: s.staff["officer.han"], Purpose: lifecycle.PurposeOperations}
	m, err := s.life.engine.Trace(ctx, req, s.life.former.ID)
	if err != nil {
		return nil, err
	}
	lines := []string{m.State}
	for _, l := range m.Locations {
		lines = append(lines, fmt.Sprintf("%s | %s | %d | %s | %s", l.Place, l.Holder, l.Count, l.Stage, l.State))
	}
	return lines, nil
}

func (s *scenario) traceBefore(ctx context.Context) error {
	lines, err := s.traceLines(ctx)
	if err != nil {
		return err
	}
	s.rep.Trace = TraceReport{Patient: s.life.former.Pseudonym, Before: lines}
	s.opt.Log("where is %s's data? %s", s.life.former.Pseudonym, strings.Join(lines, "; "))
	return nil
}

// eraseOnRequest: a current patient's request is refused with the rule
// and the date; the former patient's is carried out.
func (s *scenario) eraseOnRequest(ctx context.Context) error {
	_, err := s.life.engine.Erase(ctx, lifecycle.PatientRequest{PatientID: s.patient[0].ID, Reference: "ER-2026-0007", Received: "staff:reception"})
	var refused *lifecycle.RefusedError
	if !errors.As(err, &refused) {
		return fmt.Errorf("%w: erasing a current patient gave %v, want a refusal naming the rule", errStep, err)
	}
	s.rep.Erasure.Refused = refused.Error()
	s.opt.Log("a current patient's erasure request: %s", refused.Error())
	done, err := s.life.engine.Erase(ctx, lifecycle.PatientRequest{PatientID: s.life.former.ID, Reference: "ER-2026-0008", Received: "staff:reception"})
	if err != nil {
		return err
	}
	s.rep.Erasure.Patient, s.rep.Erasure.Records, s.rep.Erasure.CopiesOutside = s.life.former.ID, done.Records, len(done.Outside)
	if _, err := s.h.Audit.Checkpoint(ctx); err != nil {
		return err
	}
	v, verr := s.h.Verifier().Verify(ctx)
	s.rep.Erasure.AuditVerified = verr == nil && v.OK
	_, hits, err := ScanPlaintext(s.opt.Dir, s.life.needles)
	if err != nil {
		return err
	}
	s.rep.Erasure.PlaintextLeft = len(hits)
	s.opt.Log("the former patient's erasure: crypto-shredded with %d records; %d copy outside, its destruction requested; %d identifying values left in the data directory; audit verifies: %v",
		done.Records, len(done.Outside), len(hits), s.rep.Erasure.AuditVerified)
	return nil
}

// traceAfter traces the erased patient, rotates the key-encryption key so
// backups made before the erasure cannot open the patient's key either,
// and traces again.
func (s *scenario) traceAfter(ctx context.Context) error {
	lines, err := s.traceLines(ctx)
	if err != nil {
		return err
	}
	s.opt.Log("right after the erasure: %s", strings.Join(lines, "; "))
	rot, err := s.h.RotateKEK(ctx, "demo", "demo")
	if err != nil {
		return err
	}
	s.opt.Log("rotated the key-encryption key (%d data keys re-wrapped, the old version retired): backups made before the erasure can no longer open the patient's key", rot.Rewrapped)
	if lines, err = s.traceLines(ctx); err != nil {
		return err
	}
	s.rep.Trace.After = lines
	s.rep.Erasure.BackupsUnreadable = strings.Contains(lines[0], "unreadable in backups too")
	s.opt.Log("and now: %s", strings.Join(lines, "; "))
	return nil
}
