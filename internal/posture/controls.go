package posture

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/config"
	"github.com/medsec/medsec/internal/console/display"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
)

// state is what the checks read, gathered once per report.
type state struct {
	h       *hospital.Hospital
	opt     Options
	cfg     *config.Config
	staff   []identity.Staff
	alerts  map[string]int
	display display.Settings
	// displayErr is why the display settings could not be read.
	displayErr error
}

func gather(ctx context.Context, h *hospital.Hospital, opt Options) (*state, error) {
	s := &state{h: h, opt: opt, cfg: h.Config}
	var err error
	if s.staff, err = h.Staff.List(ctx); err != nil {
		return nil, err
	}
	if s.alerts, err = h.Alerts.Counts(ctx); err != nil {
		return nil, fmt.Errorf("count open alerts: %w", err)
	}
	if opt.Display != nil {
		s.display = *opt.Display
	} else {
		s.display, s.displayErr = display.Load(h.Config.Dir())
	}
	return s, nil
}

// control is one medsec control and how its real state is checked.
type control struct {
	id, name string
	// capability names the switch the control needs (config yaml name),
	// "" when it is always on.
	capability string
	enabled    func(config.Capabilities) bool
	check      func(context.Context, *state) (State, string)
}

func (c control) run(ctx context.Context, s *state) Finding {
	f := Finding{ID: c.id, Name: c.name}
	if c.enabled != nil && !c.enabled(s.cfg.Capabilities) {
		f.State, f.Reason = Off, fmt.Sprintf("capabilities.%s is off in %s", c.capability, config.FileName)
		return f
	}
	f.State, f.Reason = c.check(ctx, s)
	return f
}

// controls are every control the posture check knows, in the order the
// report lists them.
var controls = []control{
	{id: "tls", name: "TLS 1.3 on every connection", check: checkTLS},
	{id: "key-file", name: "Key-encryption key file", check: checkKeyFile},
	{id: "data-directory", name: "Sealed storage in a private data directory", check: checkDataDir},
	{id: "malware-screen", name: "Malicious-code screening and quarantine", capability: "malicious_code_prevention",
		enabled: func(c config.Capabilities) bool { return c.MalwarePrevent }, check: checkMalware},
	{id: "access-policy", name: "Access policy (Cedar) with consent and purpose", capability: "access_control",
		enabled: func(c config.Capabilities) bool { return c.AccessControl }, check: checkPolicy},
	{id: "staff-auth", name: "Staff sign-in, lockout and session timeouts", capability: "staff_authentication",
		enabled: func(c config.Capabilities) bool { return c.StaffAuth }, check: checkStaffAuth},
	{id: "privileged-mfa", name: "Second factor for every privileged account", capability: "staff_authentication",
		enabled: func(c config.Capabilities) bool { return c.StaffAuth }, check: checkPrivilegedMFA},
	{id: "maintainer-timebox", name: "Time-boxed external maintenance accounts", check: checkMaintainers},
	{id: "grant-approvals", name: "Two-person approval of grants", check: checkGrants},
	{id: "document-export", name: "Watermarked, sealed document exports", check: builtIn("every export is watermarked for its recipient, sealed and audited")},
	{id: "audit-verified", name: "Audit log verified within 24 hours", check: checkVerified},
	{id: "audit-checkpoint", name: "Signed audit checkpoints outside the database", check: checkCheckpointFile},
	{id: "retention", name: "Retention and crypto-shredding", check: alertCheck(alerts.KindRetention, "retention problems wait for review", "retention runs by the schedule; no problem reported")},
	{id: "backup-shredding", name: "Destroyed data unreadable in backups too", check: checkBackupShredding},
	{id: "deidentification", name: "De-identification (DICOM, AI datasets)", capability: "deidentification",
		enabled: func(c config.Capabilities) bool { return c.Deidentify }, check: builtIn("DICOM PS3.15 Annex E profile and k-anonymity checks apply to everything de-identified")},
	{id: "display-masking", name: "Masked names on waiting-room displays", check: checkMasking},
	{id: "portal-own-data", name: "Patient portal shows only the patient's own data", check: builtIn("patients sign in to their own record only; their sessions end after 15 minutes unused")},
	{id: "sealed-packages", name: "Signed and encrypted packages to recipients", check: builtIn("packages are signed with the hospital key and encrypted to the recipient (age)")},
	{id: "destruction-receipts", name: "Destruction receipts from recipients", check: alertCheck(alerts.KindOverdue, "packages are past their destruction deadline without a receipt", "no package is past its destruction deadline")},
	{id: "device-ca", name: "Device certificates (PHD authentication)", capability: "phd_authentication",
		enabled: func(c config.Capabilities) bool { return c.PHDAuth }, check: checkDeviceCA},
	{id: "phd-envelope", name: "Signed, encrypted device messages", capability: "phd_security",
		enabled: func(c config.Capabilities) bool { return c.PHDSecurity }, check: builtIn("ingestion accepts only messages signed by an active device and verifies them again end to end")},
	{id: "gateway-enrolled", name: "Security gateway enrolled (mutual TLS)", capability: "security_gateway",
		enabled: func(c config.Capabilities) bool { return c.SecurityGateway }, check: checkGateways},
}

// builtIn is a control that is part of medsec itself and cannot be
// switched off; what it does is said in the reason.
func builtIn(what string) func(context.Context, *state) (State, string) {
	return func(context.Context, *state) (State, string) { return Pass, what }
}

// alertCheck fails while alerts of kind are open.
func alertCheck(kind, failing, passing string) func(context.Context, *state) (State, string) {
	return func(_ context.Context, s *state) (State, string) {
		if n := s.alerts[kind]; n > 0 {
			return Fail, fmt.Sprintf("%d %s (see the alerts)", n, failing)
		}
		return Pass, passing
	}
}

// privateMode reports whether a file or directory is closed to group and
// others.
func privateMode(path string) (fs.FileMode, bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, false, err
	}
	return st.Mode().Perm(), st.Mode().Perm()&0o077 == 0, nil
}

func checkKeyFile(_ context.Context, s *state) (State, string) {
	path := s.cfg.Path(s.cfg.Keys.File)
	mode, ok, err := privateMode(path)
	switch {
	case err != nil:
		return Fail, fmt.Sprintf("cannot read the key file %s: %v", s.cfg.Keys.File, err)
	case !ok:
		return Fail, fmt.Sprintf("the key file %s has mode %04o; others can read it: run chmod 600 on it", s.cfg.Keys.File, mode)
	case s.h.Keys.Provider().ActiveKeyID() == "":
		return Fail, "the key file holds no active key-encryption key"
	}
	return Pass, fmt.Sprintf("%s mode %04o, active key %s; patient data keys are wrapped by it", s.cfg.Keys.File, mode, s.h.Keys.Provider().ActiveKeyID())
}

func checkDataDir(_ context.Context, s *state) (State, string) {
	dir := s.cfg.Dir()
	mode, ok, err := privateMode(dir)
	switch {
	case err != nil:
		return Fail, fmt.Sprintf("cannot read the data directory: %v", err)
	case !ok:
		return Fail, fmt.Sprintf("the data directory has mode %04o; others can list it: run chmod 700 on it", mode)
	}
	where := "SQLite file " + s.cfg.Database.Path
	if s.cfg.Database.Driver == "postgres" {
		where = "PostgreSQL"
	}
	return Pass, fmt.Sprintf("data directory mode %04o; identifying fields and records sealed per patient (AES-256-GCM) before they reach the %s", mode, where)
}

// certExpiryMargin: a certificate this close to its end fails, so there is
// time to renew it.
const certExpiryMargin = 14 * 24 * time.Hour

func checkTLS(_ context.Context, s *state) (State, string) {
	if t := s.opt.TLS; t != nil && t.Version != tls.VersionTLS13 {
		return Fail, fmt.Sprintf("this connection uses %s, not TLS 1.3", tls.VersionName(t.Version))
	}
	certFile, keyFile := s.cfg.Server.TLSCert, s.cfg.Server.TLSKey
	if certFile == "" && keyFile == "" {
		certFile, keyFile = "tls/server.crt", "tls/server.key"
		if _, err := os.Stat(s.cfg.Path(certFile)); errors.Is(err, fs.ErrNotExist) {
			return Pass, "medsec serve listens only over TLS 1.3; it makes its self-signed certificate at the first start"
		}
	}
	cert, err := readCertificate(s.cfg.Path(certFile))
	if err != nil {
		return Fail, fmt.Sprintf("server certificate %s: %v", certFile, err)
	}
	if mode, ok, err := privateMode(s.cfg.Path(keyFile)); err != nil || !ok {
		return Fail, fmt.Sprintf("the server key %s must exist with mode 0600 (it has %04o)", keyFile, mode)
	}
	left := cert.NotAfter.Sub(s.opt.Now)
	if left < certExpiryMargin {
		return Fail, fmt.Sprintf("the server certificate ends %s; renew it now", cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return Pass, fmt.Sprintf("TLS 1.3 only; certificate valid until %s", cert.NotAfter.UTC().Format(time.DateOnly))
}

func readCertificate(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func checkMalware(_ context.Context, s *state) (State, string) {
	msg := "every DICOM study and imported file is screened (preamble polyglots, executables, ClamAV when configured)"
	if n := s.alerts[alerts.KindQuarantine] + s.alerts[alerts.KindGuard]; n > 0 {
		msg += fmt.Sprintf("; %d quarantined or blocked files wait for review", n)
	}
	return Pass, msg
}

func checkStaffAuth(_ context.Context, s *state) (State, string) {
	ss := s.h.Staff.Sessions
	hp := s.h.Staff.HashParams
	switch {
	case ss.IdleTimeout <= 0 || ss.IdleTimeout > 30*time.Minute:
		return Fail, fmt.Sprintf("sessions stay open %s without use; at most 30 minutes", ss.IdleTimeout)
	case ss.AbsoluteTimeout <= 0 || ss.AbsoluteTimeout > 12*time.Hour:
		return Fail, fmt.Sprintf("sessions last %s; at most 12 hours", ss.AbsoluteTimeout)
	case hp.Time < identity.DefaultHash.Time || hp.MemoryKiB < identity.DefaultHash.MemoryKiB:
		return Fail, "password hashing is cheaper than argon2id's recommended cost"
	case s.h.Staff.Policy.MaxFailures <= 0:
		return Fail, "no lockout after failed sign-ins"
	}
	return Pass, fmt.Sprintf("argon2id passwords; sessions end after %s unused and %s in all; lockout after %d failures",
		ss.IdleTimeout, ss.AbsoluteTimeout, s.h.Staff.Policy.MaxFailures)
}

// active reports whether an account can sign in at now.
func active(st identity.Staff, now time.Time) bool {
	return !st.Disabled && (st.ValidUntil.IsZero() || now.Before(st.ValidUntil))
}

func checkPrivilegedMFA(_ context.Context, s *state) (State, string) {
	var missing []string
	n := 0
	for _, st := range s.staff {
		if !active(st, s.opt.Now) || !s.h.Staff.RequiresMFA(st.Role) {
			continue
		}
		n++
		if !st.TOTP && !st.SSO {
			missing = append(missing, st.Username+" ("+st.Role+")")
		}
	}
	if len(missing) > 0 {
		return Fail, fmt.Sprintf("%s %s no confirmed second factor: sign in once with the authenticator code, have an IT administrator enrol one, or disable the account",
			strings.Join(missing, ", "), plural(len(missing), "has", "have"))
	}
	return Pass, fmt.Sprintf("all %d privileged accounts sign in with a second factor", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func checkMaintainers(_ context.Context, s *state) (State, string) {
	n := 0
	for _, st := range s.staff {
		if st.Role != identity.RoleExternalMaintainer || st.Disabled {
			continue
		}
		if st.ValidUntil.IsZero() {
			return Fail, fmt.Sprintf("external maintainer %s has no end date: set one or disable the account", st.Username)
		}
		if st.ValidUntil.After(s.opt.Now) {
			n++
		}
	}
	return Pass, fmt.Sprintf("%d external maintainer accounts active now, each with an end date", n)
}

// staleApproval: a grant request left undecided this long fails the check.
const staleApproval = 7 * 24 * time.Hour

func checkGrants(ctx context.Context, s *state) (State, string) {
	pending, err := s.h.Staff.PendingGrants(ctx)
	if err != nil {
		return Fail, fmt.Sprintf("cannot read pending grants: %v", err)
	}
	for _, g := range pending {
		if s.opt.Now.Sub(g.RequestedAt) > staleApproval {
			return Fail, fmt.Sprintf("grant %s (%s) has waited since %s for a second administrator's decision",
				g.ID, g.What, g.RequestedAt.UTC().Format(time.DateOnly))
		}
	}
	return Pass, fmt.Sprintf("privileged grants need a second administrator; %d waiting for a decision", len(pending))
}

// verifiedWithin is how recent the last successful verification must be.
const verifiedWithin = 24 * time.Hour

func checkVerified(ctx context.Context, s *state) (State, string) {
	v, err := LastVerification(ctx, s.h.DB)
	switch {
	case errors.Is(err, ErrNeverVerified):
		return Fail, "the audit log has never been verified: run medsec check --verify (medsec serve verifies daily)"
	case err != nil:
		return Fail, fmt.Sprintf("cannot read the last verification: %v", err)
	case !v.OK:
		return Fail, fmt.Sprintf("the last verification (%s) FAILED: %s", v.At.UTC().Format(time.RFC3339), v.Summary)
	case s.opt.Now.Sub(v.At) > verifiedWithin:
		return Fail, fmt.Sprintf("last verified %s, more than 24 hours ago: run medsec check --verify", v.At.UTC().Format(time.RFC3339))
	}
	return Pass, fmt.Sprintf("verified %s: %d events", v.At.UTC().Format(time.RFC3339), v.Events)
}

func checkCheckpointFile(_ context.Context, s *state) (State, string) {
	cp, err := LatestCheckpoint(s.h)
	if err != nil {
		return Fail, err.Error()
	}
	return Pass, fmt.Sprintf("newest signed checkpoint covers %d events (%s), kept in %s", cp.Size, cp.At.UTC().Format(time.RFC3339), s.cfg.Audit.CheckpointFile)
}

func checkMasking(_ context.Context, s *state) (State, string) {
	r := s.display.Mask
	if s.displayErr != nil {
		return Fail, s.displayErr.Error()
	}
	if err := r.Validate(); err != nil {
		return Fail, fmt.Sprintf("%s: %v", display.FileName, err)
	}
	samples := []string{"김민수", "Kim Ji-hun"}
	shown := make([]string, len(samples))
	for i, n := range samples {
		shown[i] = r.Mask(n)
		if shown[i] == n {
			return Fail, fmt.Sprintf("the masking rule shows %q in full", n)
		}
	}
	return Pass, fmt.Sprintf("screens show call numbers and masked names only (%s, %s)", shown[0], shown[1])
}

// openDevices opens the device authority of the installation.
func openDevices(ctx context.Context, h *hospital.Hospital) (*devices.Authority, error) {
	return devices.Open(ctx, devices.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Organization: h.Config.Hospital.Name})
}

func checkDeviceCA(ctx context.Context, s *state) (State, string) {
	a, err := openDevices(ctx, s.h)
	if err != nil {
		return Fail, fmt.Sprintf("the device CA cannot be loaded: %v", err)
	}
	if left := a.CA().NotAfter.Sub(s.opt.Now); left < 90*24*time.Hour {
		return Fail, fmt.Sprintf("the device CA ends %s", a.CA().NotAfter.UTC().Format(time.DateOnly))
	}
	ds, err := a.Devices(ctx, devices.Filter{Kind: devices.KindDevice, Status: devices.StatusActive})
	if err != nil {
		return Fail, fmt.Sprintf("cannot read the device registry: %v", err)
	}
	return Pass, fmt.Sprintf("device CA valid until %s; %d active devices, each bound to one patient", a.CA().NotAfter.UTC().Format(time.DateOnly), len(ds))
}

func checkGateways(ctx context.Context, s *state) (State, string) {
	a, err := openDevices(ctx, s.h)
	if err != nil {
		return Fail, fmt.Sprintf("the device CA cannot be loaded: %v", err)
	}
	gs, err := a.Devices(ctx, devices.Filter{Kind: devices.KindGateway, Status: devices.StatusActive})
	if err != nil {
		return Fail, fmt.Sprintf("cannot read the gateway registry: %v", err)
	}
	if len(gs) == 0 {
		return Fail, "no security gateway is enrolled, so no device data can arrive: enrol one (medsec gateway enroll)"
	}
	return Pass, fmt.Sprintf("%d gateways enrolled with mutual TLS", len(gs))
}

// canary is a decision the shipped policy must make; a policy that
// decides otherwise has been weakened.
type canary struct {
	what  string
	req   access.Request
	allow bool
}

func canaries(now time.Time) []canary {
	patient := access.Patient{ID: "canary-patient", Department: "internal_medicine", Ward: "5A", Attending: "canary-doctor", ActiveEncounter: true}
	staff := func(id string, role access.Role, wards ...string) access.Staff {
		return access.Staff{ID: id, Role: role, Department: "internal_medicine", Wards: wards, MFA: true}
	}
	req := func(s access.Staff, class access.DataClass, action access.Action) access.Request {
		return access.Request{Staff: s, Patient: patient, Action: action, DataClass: class, Purpose: "TREAT", Now: now}
	}
	return []canary{
		{"the attending physician reads an observation for treatment", req(staff("canary-doctor", "physician"), "observation", "read"), true},
		{"a nurse reads a patient on another ward", req(staff("canary-nurse", "nurse", "7B"), "observation", "read"), false},
		{"administrative staff read a clinical note", req(staff("canary-clerk", "administrative"), "note", "read"), false},
		{"an IT administrator without a grant reads demographics", req(staff("canary-admin", "it_admin"), "demographics", "read"), false},
		{"a user changes the audit log", req(staff("canary-officer", "security_officer"), "audit", "write"), false},
	}
}

func checkPolicy(_ context.Context, s *state) (State, string) {
	engine := s.h.Policy()
	cs := canaries(s.opt.Now)
	for _, c := range cs {
		if d := engine.Decide(c.req); d.Allow != c.allow {
			verb := "denies"
			if d.Allow {
				verb = "allows"
			}
			return Fail, fmt.Sprintf("the policy in force %s: %s", verb, c.what)
		}
	}
	return Pass, fmt.Sprintf("%d policies in force; %d test decisions came out as they must", len(engine.Policies()), len(cs))
}

// backupGrace is how long a destroyed patient's key may stay openable from
// older backups before the posture fails: time for a scheduled
// `medsec keys rotate`.
const backupGrace = 7 * 24 * time.Hour

// checkBackupShredding fails while a patient destroyed more than a week ago
// can still be read from a backup made before the destruction (the KEK
// version that wrapped the patient's key is still held).
func checkBackupShredding(ctx context.Context, s *state) (State, string) {
	n, err := s.h.Keys.ExposedInBackups(ctx, time.Now().Add(-backupGrace))
	switch {
	case err != nil:
		return Fail, fmt.Sprintf("cannot count destroyed keys: %v", err)
	case n > 0:
		return Fail, fmt.Sprintf("%d patient(s) destroyed more than 7 days ago can still be read from backups made before: run medsec keys rotate, then replace the offline copy of the key file and destroy the old ones", n)
	}
	return Pass, "every patient destroyed more than 7 days ago is unreadable in backups too (the key-encryption key that wrapped the key is retired)"
}
