package workstation_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/guard/agent"
	"github.com/medsec/medsec/internal/guard/workstation"
	"github.com/medsec/medsec/internal/identity"
)

// officer hires a security officer and signs them in with TOTP.
func (f *fixture) officer(t *testing.T) identity.Principal {
	t.Helper()
	ctx := context.Background()
	const pw = "a long workstation test password"
	f.h.Staff.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	if _, err := f.h.Staff.Create(ctx, identity.NewStaff{Username: "officer.han", DisplayName: "Officer Han", Role: identity.RoleSecurityOfficer, Department: "security", Password: pw}); err != nil {
		t.Fatal(err)
	}
	who, err := f.h.Staff.Authenticate(ctx, "officer.han", pw, "test")
	if err != nil {
		t.Fatal(err)
	}
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
	_, token, err := f.h.Staff.Login(ctx, identity.LoginRequest{Username: "officer.han", Password: pw, TOTP: next, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.h.Staff.Sessions.Authenticate(ctx, token, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReportsKeepPathsOut: a PACS export folder named after a patient
// reaches neither the inbox nor the audit log, nor the database in the
// clear; the officer opens the sealed report to see it.
func TestReportsKeepPathsOut(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, workstation.ProtectedRoot{Label: "pacs-export", Path: `D:\PACS\Export`})
	const folder = `D:\PACS\Export\KIM_MINSU_19800101`
	changed := folder + `\IM0001.dcm`
	now := time.Now()
	reports := []agent.Alert{
		{Time: now, Kind: agent.FileModified, Severity: guard.High, Path: changed, SHA256: strings.Repeat("cd", 32), Reason: "content changed (SHA-256 was abcd)"},
		{Time: now, Kind: agent.FileAdded, Severity: guard.High, Path: `C:\Users\Public\KIM_MINSU.lnk`, Reason: "new file in a protected directory"},
		{Time: now, Kind: agent.IntegrityError, Severity: guard.Medium, Reason: "open " + folder + ": access denied"},
		{Time: now, Kind: agent.ProcessUnverified, Severity: guard.Medium, PID: 77, Exe: folder + `\viewer.exe`, Reason: "cannot read " + folder + `\viewer.exe`},
		{Time: now, Kind: agent.ProcessStopped, Severity: guard.High, PID: 78, Exe: folder + `\dump.exe`, SHA256: strings.Repeat("ef", 32), Reason: "executable is not on the allowlist; stopped with SIGKILL"},
		{Time: now, Kind: agent.ProcessNotAllowed, Severity: guard.High, PID: 79, Exe: `/home/kim/KIM_MINSU_19800101.sh`, Reason: "executable is not on the allowlist"},
	}
	if err := remote(t, f.enroll(t, "pacs-viewer-3")).Send(ctx, reports); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"KIM_MINSU", "19800101", `PACS\Export`, "access denied"}
	got := f.guardAlerts(t)
	if len(got) != len(reports) {
		t.Fatalf("%d alerts, want %d", len(got), len(reports))
	}
	want := map[string]bool{
		"file-modified on workstation pacs-viewer-3: content changed: file pacs-export/" + f.reg.PathRef(changed) + " (sha256 cdcdcdcdcdcd…)": false,
		"file-added on workstation pacs-viewer-3: new file: file " + workstation.UnlistedRoot + "/":                                           false,
		"process-stopped on workstation pacs-viewer-3: executable dump.exe (sha256 efefefefefef…) is not on the allowlist; it was stopped":    false,
		"process-not-allowed on workstation pacs-viewer-3: executable (name withheld) is not on the allowlist":                                false,
	}
	for _, a := range got {
		for _, s := range secrets {
			if strings.Contains(a.Summary+a.Detail+a.Subject, s) {
				t.Errorf("alert holds %q: %+v", s, a)
			}
		}
		if !strings.Contains(a.Detail, "is sealed; a security officer opens it") || !strings.Contains(a.Detail, "sealed-report:v1:pacs-viewer-3:") {
			t.Errorf("alert detail %q, want the sealed report", a.Detail)
		}
		for w := range want {
			if strings.HasPrefix(a.Summary, w) {
				want[w] = true
			}
		}
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("no alert says %q", w)
		}
	}
	for _, e := range f.events(t, "guard.alert") {
		for _, s := range secrets {
			if strings.Contains(e.Reason+e.Resource, s) {
				t.Errorf("audit event holds %q: %+v", s, e)
			}
		}
	}
	checkNoPlaintext(t, f, secrets)
	checkOpenReport(t, f, changed)
}

// checkNoPlaintext searches every file of the installation.
func checkNoPlaintext(t *testing.T, f *fixture, secrets []string) {
	t.Helper()
	err := filepath.WalkDir(f.h.Config.Path("."), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(path), s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkOpenReport: the officer opens the sealed report (audited); nobody
// else may (refusal audited).
func checkOpenReport(t *testing.T, f *fixture, changed string) {
	t.Helper()
	ctx := context.Background()
	var alert = f.guardAlerts(t)[0]
	for _, a := range f.guardAlerts(t) {
		if strings.HasPrefix(a.Summary, "file-modified") {
			alert = a
		}
	}
	if _, err := f.reg.OpenReport(ctx, identity.Principal{}, alert); !errors.Is(err, workstation.ErrNotOfficer) {
		t.Errorf("open without sign-in: got %v, want ErrNotOfficer", err)
	}
	if evs := f.events(t, "guard.report.read"); len(evs) != 1 || evs[0].Outcome != audit.Denied {
		t.Errorf("refusal audited as %+v", evs)
	}
	officer := f.officer(t)
	rep, err := f.reg.OpenReport(ctx, officer, alert)
	if err != nil || rep.Path != changed || rep.Kind != agent.FileModified {
		t.Fatalf("opened report %+v, %v; want the changed file's path", rep, err)
	}
	if evs := f.events(t, "guard.report.read"); len(evs) != 2 || evs[1].Outcome != audit.Success || evs[1].Resource != "Workstation/pacs-viewer-3" {
		t.Errorf("read audited as %+v", evs)
	}
	moved := alert
	moved.Detail = strings.Replace(alert.Detail, "pacs-viewer-3", "pacs-viewer-4", 1)
	if _, err := f.reg.OpenReport(ctx, officer, moved); err == nil {
		t.Error("a sealed report moved to another workstation opened")
	}
}

func TestProtectedRootLabels(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, root := range []workstation.ProtectedRoot{{Label: "KIM MINSU", Path: "/x"}, {Label: "export", Path: " "}, {Label: "", Path: "/x"}} {
		_, err := workstation.Open(ctx, workstation.Config{DB: f.h.DB, Keys: f.h.Keys, Audit: f.h.Audit, Alerts: f.h.Alerts, Protected: []workstation.ProtectedRoot{root}})
		if !errors.Is(err, workstation.ErrInvalid) {
			t.Errorf("root %+v: got %v, want ErrInvalid", root, err)
		}
	}
}
