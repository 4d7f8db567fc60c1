package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/posture"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/synth"
)

// demoStaff are the accounts of the demo hospital.
var demoStaff = []identity.NewStaff{
	{Username: "reception", DisplayName: "Registration desk", Role: identity.RoleAdministrative, Department: "administration"},
	{Username: "dr.kim", DisplayName: "Dr. Kim (internal medicine)", Role: identity.RolePhysician, Department: "internal_medicine", Position: "attending"},
	{Username: "nurse.lee", DisplayName: "Nurse Lee (ward 5A)", Role: identity.RoleNurse, Department: "internal_medicine", Wards: []string{"5A"}},
	{Username: "nurse.park", DisplayName: "Nurse Park (ward 7B)", Role: identity.RoleNurse, Department: "surgery", Wards: []string{"7B"}},
	{Username: "researcher.choi", DisplayName: "Researcher Choi", Role: identity.RoleResearcher, Department: "research"},
	{Username: "officer.han", DisplayName: "Security officer Han", Role: identity.RoleSecurityOfficer, Department: "security"},
}

func (s *scenario) hireStaff(ctx context.Context) error {
	for _, n := range demoStaff {
		n.Password = randomPassword()
		if _, err := s.h.Staff.Create(ctx, n); err != nil {
			return err
		}
		rep := StaffReport{Username: n.Username, Role: n.Role, Password: n.Password}
		p, err := s.signIn(ctx, n, &rep)
		if err != nil {
			return fmt.Errorf("sign in %s: %w", n.Username, err)
		}
		s.staff[n.Username] = p
		s.rep.Staff = append(s.rep.Staff, rep)
	}
	s.opt.Log("hired %d staff; each signed in to a server-side session (the security officer with a TOTP second factor)", len(demoStaff))
	return nil
}

// signIn opens a session as the staff member would: password, and for a
// privileged role a TOTP code from an authenticator enrolled first.
func (s *scenario) signIn(ctx context.Context, n identity.NewStaff, rep *StaffReport) (identity.Principal, error) {
	login := identity.LoginRequest{Username: n.Username, Password: n.Password, Source: "demo"}
	if s.h.Staff.RequiresMFA(n.Role) {
		code, secret, err := s.enrolTOTP(ctx, n)
		if err != nil {
			return identity.Principal{}, err
		}
		login.TOTP, rep.TOTPSecret = code, secret
	}
	_, token, err := s.h.Staff.Login(ctx, login)
	if err != nil {
		return identity.Principal{}, err
	}
	return s.h.Staff.Sessions.Authenticate(ctx, token, "demo")
}

// confirmAdmin confirms the first administrator's authenticator, which
// medsec init enrolled, with a code from it, as the IT administrator does
// at the first sign-in: every privileged account of the demo then has a
// second factor, and the posture check says so.
func (s *scenario) confirmAdmin(ctx context.Context, admin hospital.InitResult, password string) error {
	who, err := s.h.Staff.Authenticate(ctx, admin.Admin.Username, password, "demo")
	if err != nil {
		return fmt.Errorf("sign in the first administrator: %w", err)
	}
	code, err := totp.GenerateCode(admin.AdminTOTP.Secret, time.Now())
	if err != nil {
		return err
	}
	return s.h.Staff.ConfirmTOTP(ctx, who, who.ID, code)
}

// enrolTOTP enrols an authenticator for the account and returns the code
// it shows for the next 30-second step (the current one confirmed it).
func (s *scenario) enrolTOTP(ctx context.Context, n identity.NewStaff) (string, string, error) {
	who, err := s.h.Staff.Authenticate(ctx, n.Username, n.Password, "demo")
	if err != nil {
		return "", "", err
	}
	enr, err := s.h.Staff.EnrolTOTP(ctx, who, who.ID)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	code, _ := totp.GenerateCode(enr.Secret, now)
	if err := s.h.Staff.ConfirmTOTP(ctx, who, who.ID, code); err != nil {
		return "", "", err
	}
	next, err := totp.GenerateCode(enr.Secret, now.Add(30*time.Second))
	return next, enr.Secret, err
}

func (s *scenario) registerPatients(ctx context.Context) error {
	g := synth.New(s.opt.Seed)
	kim, lee := s.staff["dr.kim"], s.staff["nurse.lee"]
	req := records.Request{Who: s.staff["reception"], Purpose: "TREAT"}
	for i := range s.opt.Patients {
		p := g.Person()
		in := records.Patient{Name: p.Name, RRN: p.RRN, Phone: p.Phone, BirthDate: p.BirthDate, Sex: p.Sex, Address: p.Address,
			MRN: fmt.Sprintf("MRN-%06d", 100000+i), Department: "internal_medicine", Ward: "5A",
			Attending: kim.ID, CareTeam: []string{kim.ID, lee.ID}, ActiveEncounter: true}
		reg, err := s.h.Door.RegisterPatient(ctx, req, in)
		if err != nil {
			return err
		}
		s.people = append(s.people, p)
		s.patient = append(s.patient, reg)
		s.rep.Patients = append(s.rep.Patients, PatientReport{ID: reg.ID, Name: p.Name, RRN: p.RRN, Phone: p.Phone})
	}
	s.opt.Log("registered %d synthetic patients; names, RRNs and phone numbers sealed with per-patient keys", len(s.patient))
	return nil
}

// vital is one synthetic vital sign, stored as a FHIR Observation.
type vital struct {
	loinc, display, unit string
	value                float64
}

func observationJSON(patientRef string, v vital, at time.Time) []byte {
	obs := map[string]any{
		"resourceType": "Observation", "status": "final",
		"category":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}},
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": v.loinc, "display": v.display}}},
		"subject":           map[string]any{"reference": patientRef},
		"effectiveDateTime": at.UTC().Format(time.RFC3339),
		"valueQuantity":     map[string]any{"value": v.value, "unit": v.unit, "system": "http://unitsofmeasure.org", "code": v.unit},
	}
	b, _ := json.Marshal(obs)
	return b
}

func (s *scenario) writeRecords(ctx context.Context) error {
	req := records.Request{Who: s.staff["dr.kim"], Purpose: "TREAT"}
	now := time.Now()
	for i, p := range s.patient {
		vitals := []vital{{"8867-4", "Heart rate", "/min", float64(60 + i*3)}, {"8480-6", "Systolic blood pressure", "mm[Hg]", float64(110 + i*4)},
			{"29463-7", "Body weight", "kg", 55 + float64(i)*2.5}}
		var recs []records.Record
		for j, v := range vitals {
			at := now.Add(-time.Duration(j) * time.Hour)
			recs = append(recs, records.Record{Class: records.ClassObservation, Code: v.loinc, Effective: at,
				Source: "staff:" + req.Who.Username, Payload: observationJSON("Patient/"+p.Pseudonym, v, at)})
		}
		if _, err := s.h.Door.AddRecords(ctx, req, p.ID, recs); err != nil {
			return err
		}
		note := records.Record{Class: records.ClassNote, Code: "11506-3", Effective: now, Source: "staff:" + req.Who.Username,
			Payload: []byte(fmt.Sprintf("Progress note: %s (%s), stable, continue current medication.", s.people[i].Name, s.people[i].RRN))}
		if _, err := s.h.Door.AddRecords(ctx, req, p.ID, []records.Record{note}); err != nil {
			return err
		}
		s.rep.Records.Stored += len(recs) + 1
	}
	s.opt.Log("Dr. Kim wrote %d sealed records (vital signs and progress notes)", s.rep.Records.Stored)
	return nil
}

func (s *scenario) readAsPhysician(ctx context.Context) error {
	req := records.Request{Who: s.staff["dr.kim"], Purpose: "TREAT"}
	for i, p := range s.patient {
		got, err := s.h.Door.Patient(ctx, req, p.ID)
		if err != nil {
			return err
		}
		if got.Name != s.people[i].Name || got.RRN != s.people[i].RRN {
			return fmt.Errorf("%w: patient %s read back as %q", errStep, p.Pseudonym, got.Name)
		}
		obs, err := s.h.Door.Records(ctx, req, p.ID, records.Filter{Class: records.ClassObservation})
		if err != nil {
			return err
		}
		s.rep.Records.Read += len(obs)
	}
	s.opt.Log("Dr. Kim read %d patients and %d observations; every read was audited before the data left", len(s.patient), s.rep.Records.Read)
	return nil
}

// verifyAudit verifies the audit log and records the verification, as
// medsec check --verify does, so the posture check knows of it.
func (s *scenario) verifyAudit(ctx context.Context) error {
	v, err := posture.Verify(ctx, s.h, "demo")
	if err != nil {
		return err
	}
	if !v.OK {
		return fmt.Errorf("%w: %s", errStep, v.Summary)
	}
	s.rep.Audit = AuditReport{Events: v.Events, Verified: v.OK, Checkpoint: v.Checkpoint, Summary: v.Summary}
	s.opt.Log("%s", v.Summary)
	return nil
}

func (s *scenario) destroyPatient(ctx context.Context) error {
	victim := s.patient[len(s.patient)-1]
	req := records.Request{Who: s.staff["officer.han"], Purpose: "HOPERAT"}
	if err := s.h.Door.DestroyPatient(ctx, req, victim.ID, "REQUEST patient erasure request #2026-001"); err != nil {
		return err
	}
	reader := records.Request{Who: s.staff["dr.kim"], Purpose: "TREAT"}
	_, err := s.h.Door.Patient(ctx, reader, victim.ID)
	if !errors.Is(err, keys.ErrDestroyed) {
		return fmt.Errorf("%w: reading a destroyed patient gave %v", errStep, err)
	}
	_, rerr := s.h.Door.Records(ctx, reader, victim.ID, records.Filter{Class: records.ClassObservation})
	if _, err := s.h.Audit.Checkpoint(ctx); err != nil {
		return err
	}
	v, verr := s.h.Verifier().Verify(ctx)
	s.rep.Destruction = DestroyReport{Patient: victim.ID, Pseudonym: victim.Pseudonym, ReadError: err.Error(), AuditVerifiedAfter: verr == nil && v.OK,
		RecordsUnreadable: errors.Is(rerr, keys.ErrDestroyed), DemographicsDeleted: true}
	s.rep.Audit = AuditReport{Events: v.Events, Verified: v.OK, Checkpoint: v.Checkpoint, Summary: v.Summary()}
	s.opt.Log("crypto-shredded patient %s; a read now says: %v", victim.Pseudonym, err)
	s.opt.Log("after destruction: %s", v.Summary())
	return nil
}
