package posture

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

type fixture struct {
	h     *hospital.Hospital
	dir   string
	admin hospital.InitResult
}

const adminPassword = "correct-horse-battery-7"

func newFixture(t *testing.T, profile string) *fixture {
	return newFixtureOn(t, profile, lifecycletest.SQLite)
}

func newFixtureOn(t *testing.T, profile string, b lifecycletest.Backend) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	pass := []byte("posture test passphrase")
	dsn := ""
	if b.DSN != "" {
		dsn = storetest.WithSchema(b.DSN, storetest.NewSchema(t, b.DSN))
	}
	res, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: profile, HospitalName: "Posture Test Hospital", DSN: dsn,
		Passphrase: pass, AdminPassword: adminPassword, KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return &fixture{h: h, dir: dir, admin: res}
}

// confirmAdmin signs the first administrator in once with a code, which
// confirms the authenticator enrolled at init.
func (f *fixture) confirmAdmin(t *testing.T) {
	t.Helper()
	code, err := totp.GenerateCode(f.admin.AdminTOTP.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.h.Staff.Login(context.Background(), identity.LoginRequest{Username: "admin", Password: adminPassword, TOTP: code, Source: "test"}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) check(t *testing.T, opt Options) *Report {
	t.Helper()
	r, err := Check(context.Background(), f.h, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantState(t *testing.T, r *Report, id string, want State, reason string) {
	t.Helper()
	f, ok := r.Control(id)
	if !ok {
		t.Fatalf("no control %s in the report", id)
	}
	if f.State != want || !strings.Contains(f.Reason, reason) {
		t.Errorf("control %s = %s (%q), want %s with a reason containing %q", id, f.State, f.Reason, want, reason)
	}
}

func TestFreshSmallHospital(t *testing.T) {
	f := newFixture(t, "small")
	r := f.check(t, Options{})
	wantState(t, r, "key-file", Pass, "mode 0600")
	wantState(t, r, "data-directory", Pass, "mode 0700")
	wantState(t, r, "tls", Pass, "first start")
	wantState(t, r, "audit-verified", Fail, "never been verified")
	wantState(t, r, "privileged-mfa", Fail, "admin (it_admin)")
	wantState(t, r, "access-policy", Pass, "test decisions")
	wantState(t, r, "display-masking", Pass, "김*수")
	wantState(t, r, "device-ca", Off, "capabilities.phd_authentication")
	wantState(t, r, "gateway-enrolled", Off, "capabilities.security_gateway")
	wantState(t, r, "audit-checkpoint", Pass, "signed checkpoint")
	if r.OK() || r.Failed != 2 {
		t.Errorf("fresh install: OK %v with %d failures, want 2 failures (verification, second factor)", r.OK(), r.Failed)
	}
	for _, q := range r.Requirements {
		small := q.Location == 1 || q.Location == 2 || q.Location == 3 || q.Location == 5
		if q.Required == small {
			t.Errorf("location %d (%s) required = %v in the small profile", q.Location, q.Place, q.Required)
		}
		if small && q.State != Off {
			t.Errorf("location %d %q = %s, want off", q.Location, q.Requirement, q.State)
		}
	}

	f.confirmAdmin(t)
	if _, err := Verify(context.Background(), f.h, "test"); err != nil {
		t.Fatal(err)
	}
	r = f.check(t, Options{})
	if !r.OK() {
		t.Errorf("after verifying and confirming the second factor: %d failures, want none\n%s", r.Failed, text(t, r))
	}
	wantState(t, r, "audit-verified", Pass, "verified")
	wantState(t, r, "privileged-mfa", Pass, "all 1 privileged accounts")
	for _, s := range r.Safeguards {
		if s.State == Fail {
			t.Errorf("safeguard %s %s fails", s.Standard, s.Ref)
		}
	}
}

func text(t *testing.T, r *Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRealStateFailures(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(t *testing.T, f *fixture)
		opt     Options
		control string
		reason  string
	}{
		{"key file readable by others", func(t *testing.T, f *fixture) { chmod(t, filepath.Join(f.dir, "keys/kek.json"), 0o644) }, Options{}, "key-file", "mode 0644"},
		{"data directory listable", func(t *testing.T, f *fixture) { chmod(t, f.dir, 0o755) }, Options{}, "data-directory", "chmod 700"},
		{"verification too old", nil, Options{Now: time.Now().Add(25 * time.Hour)}, "audit-verified", "more than 24 hours"},
		{"connection below TLS 1.3", nil, Options{TLS: &tls.ConnectionState{Version: tls.VersionTLS12}}, "tls", "TLS 1.2"},
		{"certificate about to end", func(t *testing.T, f *fixture) { writeCert(t, f.dir, time.Now().Add(48*time.Hour), 0o600) }, Options{}, "tls", "renew it now"},
		{"server key readable", func(t *testing.T, f *fixture) { writeCert(t, f.dir, time.Now().Add(365*24*time.Hour), 0o644) }, Options{}, "tls", "mode 0600"},
		{"overdue destruction receipt", func(t *testing.T, f *fixture) { raise(t, f.h, alerts.KindOverdue) }, Options{}, "destruction-receipts", "1 packages"},
		{"masking rule broken", func(t *testing.T, f *fixture) { write(t, filepath.Join(f.dir, "display.yaml"), "mask:\n  char: x\n") }, Options{}, "display-masking", "mask char"},
		{"privileged account without second factor", func(t *testing.T, f *fixture) {
			if _, err := f.h.Staff.Create(context.Background(), identity.NewStaff{Username: "officer.kim", DisplayName: "Officer Kim",
				Role: identity.RoleSecurityOfficer, Password: "long enough password 42"}); err != nil {
				t.Fatal(err)
			}
		}, Options{}, "privileged-mfa", "officer.kim (security_officer)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "small")
			f.confirmAdmin(t)
			if _, err := Verify(context.Background(), f.h, "test"); err != nil {
				t.Fatal(err)
			}
			if r := f.check(t, tt.opt); tt.break_ != nil && !r.OK() {
				t.Fatalf("before breaking anything: %d failures\n%s", r.Failed, text(t, r))
			}
			if tt.break_ != nil {
				tt.break_(t, f)
			}
			r := f.check(t, tt.opt)
			wantState(t, r, tt.control, Fail, tt.reason)
			if r.OK() {
				t.Errorf("report is OK although %s fails", tt.control)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCert puts a server certificate ending at notAfter, with its key
// file in keyMode, where medsec serve keeps its own.
func writeCert(t *testing.T, dir string, notAfter time.Time, keyMode os.FileMode) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "medsec server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "tls/server.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, filepath.Join(dir, "tls/server.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	chmod(t, filepath.Join(dir, "tls/server.key"), keyMode)
}

func raise(t *testing.T, h *hospital.Hospital, kind string) {
	t.Helper()
	if _, err := h.Alerts.Raise(context.Background(), h.DB, alerts.Alert{Kind: kind, Summary: "test " + kind}); err != nil {
		t.Fatal(err)
	}
}

func TestLargeHospital(t *testing.T) {
	f := newFixture(t, "large")
	r := f.check(t, Options{})
	wantState(t, r, "device-ca", Pass, "device CA valid until")
	wantState(t, r, "gateway-enrolled", Fail, "no security gateway is enrolled")
	wantState(t, r, "deidentification", Pass, "Annex E")
	for _, q := range r.Requirements {
		if !q.Required {
			t.Errorf("location %d is not required in the large profile", q.Location)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Requirements) != len(r.Requirements) || back.Failed != r.Failed {
		t.Errorf("JSON round trip lost findings")
	}
}

func TestVerifyRecordsTampering(t *testing.T) {
	lifecycletest.Each(t, testVerifyRecordsTampering)
}

func testVerifyRecordsTampering(t *testing.T, b lifecycletest.Backend) {
	f := newFixtureOn(t, "small", b)
	ctx := context.Background()
	if _, err := Verify(ctx, f.h, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.h.DB.Exec(ctx, `UPDATE audit_events SET event = ? WHERE chain = ? AND idx = 1`, []byte(`{"index":1,"actor":"mallory"}`), f.h.Config.Audit.Chain); err != nil {
		t.Fatal(err)
	}
	before, _, err := audit.LatestCheckpoint(ctx, f.h.DB, f.h.Config.Audit.Chain)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, f.h, "test")
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || v.FirstBad != 1 {
		t.Errorf("verification of a changed event: ok %v, first bad %d; want a failure at 1", v.OK, v.FirstBad)
	}
	// a failed verification must not sign a checkpoint over the changed log
	if _, err := Verify(ctx, f.h, "test"); err != nil {
		t.Fatal(err)
	}
	if after, _, err := audit.LatestCheckpoint(ctx, f.h.DB, f.h.Config.Audit.Chain); err != nil || after != before {
		t.Errorf("latest checkpoint after failed verifications = %d, %v; want %d, none signed over the changed log", after, err, before)
	}
	last, err := LastVerification(ctx, f.h.DB)
	if err != nil || last.OK || last.FirstBad != 1 {
		t.Errorf("LastVerification = %+v, %v; want the failure recorded", last, err)
	}
	open, err := f.h.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindVerify})
	if err != nil || len(open) != 1 {
		t.Errorf("open verification alerts = %d, %v; want 1", len(open), err)
	}
	wantState(t, f.check(t, Options{}), "audit-verified", Fail, "FAILED")
}

func TestLatestCheckpoint(t *testing.T) {
	f := newFixture(t, "small")
	cp, err := LatestCheckpoint(f.h)
	if err != nil || cp.Size == 0 {
		t.Fatalf("LatestCheckpoint = %+v, %v; want a signed checkpoint", cp, err)
	}
	path := filepath.Join(f.dir, f.h.Config.Audit.CheckpointFile)
	raw, _ := os.ReadFile(path)
	forged := strings.Replace(string(raw), "\\n"+strconv.FormatUint(cp.Size, 10)+"\\n", "\\n999999\\n", 1)
	if forged == string(raw) {
		t.Fatalf("test could not forge the checkpoint file: %s", raw)
	}
	write(t, path, forged)
	if _, err := LatestCheckpoint(f.h); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("forged checkpoint: err = %v, want a signature failure", err)
	}
	write(t, path, "")
	wantState(t, f.check(t, Options{}), "audit-checkpoint", Fail, "holds no checkpoint")
}

// TestBackupShredding: a patient destroyed more than a week ago whose key
// older backups can still open fails the posture until the key-encryption
// key is rotated; a fresh destruction has the week's grace.
func TestBackupShredding(t *testing.T) {
	f := newFixture(t, "small")
	ctx := context.Background()
	err := f.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := f.h.Keys.CreatePatientKey(ctx, tx, "pt_gone"); err != nil {
			return err
		}
		return f.h.Keys.DestroyPatientKey(ctx, tx, "pt_gone", "test", "REQUEST test")
	})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, f.check(t, Options{}), "backup-shredding", Pass, "more than 7 days ago")
	if _, err := f.h.DB.Exec(ctx, `UPDATE data_keys SET destroyed_at = ? WHERE owner = 'patient:pt_gone'`, time.Now().Add(-8*24*time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	wantState(t, f.check(t, Options{}), "backup-shredding", Fail, "1 patient(s) destroyed more than 7 days ago")
	if _, err := f.h.RotateKEK(ctx, "test", "test"); err != nil {
		t.Fatal(err)
	}
	wantState(t, f.check(t, Options{}), "backup-shredding", Pass, "unreadable in backups too")
}
