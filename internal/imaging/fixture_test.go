package imaging_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
)

// fixture is a real installation (SQLite, the shipped Cedar policy) with a
// registered patient, the staff who treat them, a security officer signed
// in with TOTP, and an intake.
type fixture struct {
	h        *hospital.Hospital
	in       *imaging.Intake
	clerk    identity.Principal
	doctor   identity.Principal
	nurse    identity.Principal
	officer  identity.Principal
	patient  records.Patient
	password string
}

const testMRN = "MRN-100000"

func newFixture(t testing.TB, scan guard.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "h")
	pass := []byte("imaging test passphrase")
	kdf := keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	if _, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: "large", HospitalName: "imaging test hospital",
		Passphrase: pass, AdminPassword: "correct horse battery imaging 42", KDF: kdf}); err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	h.Staff.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	f := &fixture{h: h, password: "a long imaging test password"}
	f.clerk = f.hire(t, identity.NewStaff{Username: "reception", DisplayName: "Reception", Role: identity.RoleAdministrative, Department: "administration"})
	f.doctor = f.hire(t, identity.NewStaff{Username: "dr.kim", DisplayName: "Dr Kim", Role: identity.RolePhysician, Department: "internal_medicine", Position: "attending"})
	f.nurse = f.hire(t, identity.NewStaff{Username: "nurse.park", DisplayName: "Nurse Park", Role: identity.RoleNurse, Department: "surgery", Wards: []string{"7B"}})
	f.officer = f.hireOfficer(t, "officer.han")
	f.patient = f.register(t, testMRN, "김민수")
	if f.in, err = imaging.New(ctx, imaging.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Alerts: h.Alerts, Scan: scan}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) hire(t testing.TB, n identity.NewStaff) identity.Principal {
	t.Helper()
	n.Password = f.password
	if _, err := f.h.Staff.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	p, err := f.h.Staff.Authenticate(context.Background(), n.Username, n.Password, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hireOfficer makes a security officer who signs in with password and TOTP.
func (f *fixture) hireOfficer(t testing.TB, name string) identity.Principal {
	t.Helper()
	ctx := context.Background()
	who := f.hire(t, identity.NewStaff{Username: name, DisplayName: name, Role: identity.RoleSecurityOfficer, Department: "security"})
	enr, err := f.h.Staff.EnrolTOTP(ctx, who, who.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := totp.GenerateCode(enr.Secret, now)
	if err := f.h.Staff.ConfirmTOTP(ctx, who, who.ID, code); err != nil {
		t.Fatal(err)
	}
	next, _ := totp.GenerateCode(enr.Secret, now.Add(30*time.Second))
	_, token, err := f.h.Staff.Login(ctx, identity.LoginRequest{Username: name, Password: f.password, TOTP: next, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.h.Staff.Sessions.Authenticate(ctx, token, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !p.MFA {
		t.Fatal("the officer's session has no second factor")
	}
	return p
}

func (f *fixture) register(t testing.TB, mrn, name string) records.Patient {
	t.Helper()
	p, err := f.h.Door.RegisterPatient(context.Background(), records.Request{Who: f.clerk, Purpose: "TREAT"}, records.Patient{
		Name: name, MRN: mrn, Department: "internal_medicine", Ward: "5A", Attending: f.doctor.ID,
		CareTeam: []string{f.doctor.ID}, ActiveEncounter: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) treat(who identity.Principal) records.Request {
	return records.Request{Who: who, Purpose: "TREAT"}
}

// writeFiles writes files (slash paths) under a new media root.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// study generates one study of a patient: series × instances files.
func study(t *testing.T, seed uint64, mrn string, series, instances int, preamble []byte) []dicomtest.Instance {
	t.Helper()
	ins, err := dicomtest.Generate(dicomtest.Options{Seed: seed, Patients: 1, SeriesPerStudy: series, InstancesPerSeries: instances,
		Preamble: preamble, Override: []dicomtest.Patient{{ID: mrn}}})
	if err != nil {
		t.Fatal(err)
	}
	return ins
}
