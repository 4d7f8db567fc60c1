package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
)

const cliPassword = "a long command-line test password"

// cliHospital makes an installation with a patient (MRN-100000), the
// physician who treats them, and a security officer whose authenticator
// secret it returns.
func cliHospital(t *testing.T) (dir, secret string) {
	dir, secret, _ = cliHospitalPatient(t)
	return dir, secret
}

// cliHospitalPatient is cliHospital that also returns the patient's id.
func cliHospitalPatient(t *testing.T) (dir, secret, patientID string) {
	t.Helper()
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "h")
	pass := []byte("cli test passphrase")
	t.Setenv("MEDSEC_PASSPHRASE", string(pass))
	if _, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: "large", HospitalName: "cli test", Passphrase: pass,
		AdminPassword: "correct horse battery staple 9", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}}); err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	staff := map[string]identity.Principal{}
	for _, n := range []identity.NewStaff{
		{Username: "reception", DisplayName: "Reception", Role: identity.RoleAdministrative, Department: "administration"},
		{Username: "dr.kim", DisplayName: "Dr Kim", Role: identity.RolePhysician, Department: "internal_medicine"},
		{Username: "officer.han", DisplayName: "Officer Han", Role: identity.RoleSecurityOfficer, Department: "security"},
	} {
		n.Password = cliPassword
		if _, err := h.Staff.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		if staff[n.Username], err = h.Staff.Authenticate(ctx, n.Username, cliPassword, "test"); err != nil {
			t.Fatal(err)
		}
	}
	officer := staff["officer.han"]
	enr, err := h.Staff.EnrolTOTP(ctx, officer, officer.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The first code is the previous time step's, leaving the current and
	// the next step for two sign-ins of the test.
	code, _ := totp.GenerateCode(enr.Secret, time.Now().Add(-30*time.Second))
	if err := h.Staff.ConfirmTOTP(ctx, officer, officer.ID, code); err != nil {
		t.Fatal(err)
	}
	pt, err := h.Door.RegisterPatient(ctx, records.Request{Who: staff["reception"], Purpose: "TREAT"}, records.Patient{Name: "김민수",
		MRN: "MRN-100000", Department: "internal_medicine", Ward: "5A", Attending: staff["dr.kim"].ID, ActiveEncounter: true})
	if err != nil {
		t.Fatal(err)
	}
	return dir, enr.Secret, pt.ID
}

// medsec runs the command line in this process.
func medsec(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if os.Getenv("MEDSEC_SESSION_FILE") == "" {
		// Staff sessions are saved; keep them out of the user's home.
		t.Setenv("MEDSEC_SESSION_FILE", filepath.Join(t.TempDir(), "sessions.json"))
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestImagingCommandLine(t *testing.T) {
	dir, secret := cliHospital(t)
	t.Setenv("MEDSEC_STAFF_PASSWORD", cliPassword)
	cd := filepath.Join(t.TempDir(), "cd")
	if err := mkcd(cd, "MRN-100000"); err != nil {
		t.Fatal(err)
	}
	out, err := medsec(t, "import", cd, "--origin", "CD from Busan clinic", "--json", "--data", dir)
	if code := exitCode(err); code != 1 {
		t.Fatalf("import exit %d (%v), want 1 (files quarantined): %s", code, err, out)
	}
	var rep imaging.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Stored != 4 || rep.Quarantined != 2 || rep.Studies != 1 {
		t.Fatalf("import: %d stored, %d quarantined, %d studies; want 4, 2, 1", rep.Stored, rep.Quarantined, rep.Studies)
	}
	held := map[string]string{}
	for _, f := range rep.Files {
		held[filepath.Base(f.Path)] = f.Quarantine
	}

	// The officer releases the polyglot with a second factor; it is
	// stored with its preamble zeroed.
	code, _ := totp.GenerateCode(secret, time.Now())
	out, err = medsec(t, "quarantine", "release", held["IM0001"], "--reason", "vendor stub, checked", "--as", "officer.han", "--totp", code, "--data", dir)
	if err != nil || !strings.Contains(out, "stored as img_") || !strings.Contains(out, "preamble zeroed") {
		t.Fatalf("release: %v\n%s", err, out)
	}
	// Without a second factor (and without the session the release
	// opened) the officer may not delete.
	saved := os.Getenv("MEDSEC_SESSION_FILE")
	t.Setenv("MEDSEC_SESSION_FILE", filepath.Join(t.TempDir(), "fresh.json"))
	out, err = medsec(t, "quarantine", "delete", held["AUTORUN.INF"], "--reason", "junk", "--as", "officer.han", "--data", dir)
	t.Setenv("MEDSEC_SESSION_FILE", saved)
	if err == nil || !strings.Contains(err.Error(), "second factor") {
		t.Errorf("delete without TOTP: %v, %s; want a refusal", err, out)
	}
	// Showing the quarantine needs the officer signed in, too.
	out, err = medsec(t, "quarantine", "show", held["IM0001"], "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "second factor") {
		t.Errorf("show without signing in: %v, %s; want a refusal", err, out)
	}
	code, _ = totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	out, err = medsec(t, "quarantine", "show", held["IM0001"], "--as", "officer.han", "--totp", code, "--data", dir)
	if err != nil || !strings.Contains(out, "released") || !strings.Contains(out, "vendor stub, checked") || !strings.Contains(out, "dicom-preamble") ||
		!strings.Contains(out, "CD from Busan clinic") || !strings.Contains(out, "patient  P-") {
		t.Errorf("show: %v\n%s", err, out)
	}

	// The physician reads the study back through the door.
	studyDir := filepath.Join(t.TempDir(), "study")
	out, err = medsec(t, "imaging", "study", studyUID(t, cd), "--out", studyDir, "--as", "dr.kim", "--data", dir)
	if err != nil || !strings.Contains(out, "4 instances of patient P-") {
		t.Fatalf("imaging study: %v\n%s", err, out)
	}
	files, _ := os.ReadDir(studyDir)
	if len(files) != 4 {
		t.Errorf("%d files written, want 4", len(files))
	}
	out, err = medsec(t, "imaging", "study", studyUID(t, cd), "--out", filepath.Join(t.TempDir(), "x"), "--as", "reception", "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("the registration desk reading a study: %v, %s; want a denial", err, out)
	}
}

// studyUID reads the study UID of the test CD's study.
func studyUID(t *testing.T, cd string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cd, "DICOM", "ST01", "SE00", "IM001"))
	if err != nil {
		t.Fatal(err)
	}
	// The generator's UIDs are 2.25.<decimal>; the study's is the first
	// after (0020,000D).
	i := bytes.Index(data, []byte{0x20, 0x00, 0x0D, 0x00})
	if i < 0 {
		t.Fatal("no Study Instance UID")
	}
	n := int(data[i+6]) | int(data[i+7])<<8
	return strings.TrimRight(string(data[i+8:i+8+n]), "\x00 ")
}

func TestGuardEnrolCommandLine(t *testing.T) {
	dir, _ := cliHospital(t)
	out := filepath.Join(t.TempDir(), "ws")
	res, err := medsec(t, "guard", "enroll", "pacs-viewer-1", "--out", out, "--data", dir)
	if err != nil || !strings.Contains(res, "enrolled pacs-viewer-1") {
		t.Fatalf("enroll: %v\n%s", err, res)
	}
	for _, f := range []string{"pacs-viewer-1.crt", "pacs-viewer-1.key", "server.crt", "agent.yaml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("enroll did not write %s", f)
		}
	}
	if st, _ := os.Stat(filepath.Join(out, "pacs-viewer-1.key")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st)
	}
	conf, _ := os.ReadFile(filepath.Join(out, "agent.yaml"))
	if !strings.Contains(string(conf), "/guard/alerts") {
		t.Errorf("agent.yaml lacks the server url:\n%s", conf)
	}
	if res, err = medsec(t, "guard", "revoke", "pacs-viewer-1", "--reason", "replaced", "--data", dir); err != nil {
		t.Fatal(err)
	}
	res, err = medsec(t, "guard", "list", "--data", dir)
	if err != nil || !strings.Contains(res, "pacs-viewer-1") || !strings.Contains(res, "revoked") {
		t.Errorf("list: %v\n%s", err, res)
	}
	if _, err := medsec(t, "guard", "enroll", "../escape", "--out", filepath.Join(t.TempDir(), "e"), "--data", dir); err == nil {
		t.Error("enrolled a name with a path in it")
	}
}

// TestQuarantineTraceAndErase: `medsec trace` lists the patient's file
// held in quarantine, and `medsec patient erase` destroys it.
func TestQuarantineTraceAndErase(t *testing.T) {
	dir, secret, patient := cliHospitalPatient(t)
	t.Setenv("MEDSEC_STAFF_PASSWORD", cliPassword)
	// The hospital's own schedule, with nothing that keeps the patient.
	schedule := "name: test\nrules:\n  - class: demographics\n    keep: 1y\n    basis: the hospital's own rule\n"
	if err := os.WriteFile(filepath.Join(dir, lifecycle.ScheduleFile), []byte(schedule), 0o600); err != nil {
		t.Fatal(err)
	}
	cd := filepath.Join(t.TempDir(), "cd")
	if err := mkcd(cd, "MRN-100000"); err != nil {
		t.Fatal(err)
	}
	if _, err := medsec(t, "import", cd, "--origin", "CD from Busan clinic", "--data", dir); exitCode(err) != 1 {
		t.Fatalf("import: %v", err)
	}
	trace := func(at time.Time) string {
		t.Helper()
		code, _ := totp.GenerateCode(secret, at)
		out, err := medsec(t, "trace", "--patient", patient, "--as", "officer.han", "--totp", code, "--data", dir)
		if err != nil {
			t.Fatalf("trace: %v\n%s", err, out)
		}
		return out
	}
	if out := trace(time.Now()); !strings.Contains(out, "quarantine: held files") || strings.Contains(out, "internal/imaging") {
		t.Errorf("trace before the erasure lists no held file, or imaging as not traced:\n%s", out)
	}
	// The officer's session from the trace carries the erasure.
	out, err := medsec(t, "patient", "erase", "--patient", patient, "--request", "ER-7", "--as", "officer.han", "--data", dir)
	if err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if out := trace(time.Now().Add(30 * time.Second)); !strings.Contains(out, "quarantine: deleted files") || strings.Contains(out, "quarantine: held files") {
		t.Errorf("trace after the erasure:\n%s", out)
	}
}
