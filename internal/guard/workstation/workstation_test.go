package workstation_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/guard/agent"
	"github.com/medsec/medsec/internal/guard/workstation"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/server"
)

type fixture struct {
	h      *hospital.Hospital
	reg    *workstation.Registry
	srv    *httptest.Server
	url    string
	dir    string
	caFile string
}

// newFixture runs the alert endpoint behind a real TLS 1.3 server, mounted
// as `medsec serve` mounts it.
func newFixture(t *testing.T, protected ...workstation.ProtectedRoot) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pass := []byte("workstation test passphrase")
	if _, err := hospital.Init(ctx, hospital.InitOptions{Dir: filepath.Join(dir, "h"), Profile: "large", HospitalName: "ws test",
		Passphrase: pass, AdminPassword: "correct horse battery staple 7", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}}); err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, filepath.Join(dir, "h"), hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	reg, err := workstation.Open(ctx, workstation.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Alerts: h.Alerts, Protected: protected})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := server.SelfSigned("ws test", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	router := chi.NewRouter()
	router.Mount("/guard", reg.Handler())
	srv := httptest.NewUnstartedServer(router)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	reg.ConfigureTLS(srv.TLS)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f := &fixture{h: h, reg: reg, srv: srv, url: srv.URL + "/guard/alerts", dir: dir, caFile: filepath.Join(dir, "server.crt")}
	write(t, f.caFile, certPEM)
	return f
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// enroll issues a certificate and writes it where an agent reads it.
func (f *fixture) enroll(t *testing.T, name string) agent.ServerConfig {
	t.Helper()
	e, err := f.reg.Enroll(context.Background(), name, "cli:test", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := agent.ServerConfig{URL: f.url, Cert: filepath.Join(f.dir, name+".crt"), Key: filepath.Join(f.dir, name+".key"), CA: f.caFile}
	write(t, c.Cert, e.CertPEM)
	write(t, c.Key, e.KeyPEM)
	return c
}

func remote(t *testing.T, c agent.ServerConfig) *agent.Remote {
	t.Helper()
	r, err := agent.NewRemote(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sample(reason string) agent.Alert {
	return agent.Alert{Time: time.Now(), Kind: agent.ProcessNotAllowed, Severity: guard.High, PID: 4242, Exe: "/opt/viewer/update.exe",
		SHA256: strings.Repeat("ab", 32), Reason: reason}
}

func (f *fixture) guardAlerts(t *testing.T) []alerts.Alert {
	t.Helper()
	got, err := f.h.Alerts.List(context.Background(), alerts.Filter{Kind: alerts.KindGuard})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) events(t *testing.T, action string) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := audit.Scan(context.Background(), f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		if e.Action == action {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAlertsReachTheInboxAndTheLog(t *testing.T) {
	f := newFixture(t)
	r := remote(t, f.enroll(t, "pacs-viewer-1"))
	if err := r.Send(context.Background(), []agent.Alert{sample("not on the allowlist"), sample("second one")}); err != nil {
		t.Fatal(err)
	}
	if r.Pending() != 0 {
		t.Fatalf("%d alerts still pending after a delivery to a live server", r.Pending())
	}
	got := f.guardAlerts(t)
	if len(got) != 2 {
		t.Fatalf("inbox has %d guard alerts, want 2", len(got))
	}
	for _, a := range got {
		if a.Subject != "workstation:pacs-viewer-1" || a.Severity != alerts.Critical || !strings.Contains(a.Summary, "process-not-allowed on workstation pacs-viewer-1") {
			t.Errorf("alert %+v", a)
		}
	}
	evs := f.events(t, "guard.alert")
	if len(evs) != 2 || evs[0].Actor != "workstation:pacs-viewer-1" || evs[0].Outcome != audit.Success || !strings.Contains(evs[0].Reason, "update.exe") {
		t.Errorf("audit events %+v", evs)
	}
	ws, err := f.reg.List(context.Background())
	if err != nil || len(ws) != 1 || ws[0].LastSeen.IsZero() {
		t.Errorf("registry %+v, %v; want the workstation seen", ws, err)
	}
}

// TestResendIsHarmless posts one batch twice, as an agent does when the
// answer to the first was lost.
func TestResendIsHarmless(t *testing.T) {
	f := newFixture(t)
	c := f.enroll(t, "ct-console")
	client := clientWith(t, c.Cert, c.Key, f.caFile)
	body, _ := json.Marshal(agent.Batch{Alerts: []agent.Report{{ID: "r1", Alert: sample("a")}, {ID: "r2", Alert: sample("b")}}})
	var receipts []agent.Receipt
	for range 2 {
		resp, err := client.Post(f.url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var rc agent.Receipt
		json.NewDecoder(resp.Body).Decode(&rc)
		resp.Body.Close()
		receipts = append(receipts, rc)
	}
	if receipts[0] != (agent.Receipt{Accepted: 2}) || receipts[1] != (agent.Receipt{Duplicates: 2}) {
		t.Errorf("receipts %+v, want 2 accepted then 2 duplicates", receipts)
	}
	if n := len(f.guardAlerts(t)); n != 2 {
		t.Errorf("%d alerts, want 2", n)
	}
}

func clientWith(t *testing.T, certFile, keyFile, caFile string) *http.Client {
	t.Helper()
	tc := &tls.Config{MinVersion: tls.VersionTLS13}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	pem, _ := os.ReadFile(caFile)
	tc.RootCAs = mustPool(t, pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	good := f.enroll(t, "mr-console")
	revoked := f.enroll(t, "old-viewer")
	if err := f.reg.Revoke(context.Background(), "old-viewer", "cli:test", "decommissioned"); err != nil {
		t.Fatal(err)
	}
	replaced := f.enroll(t, "us-cart")
	replacedCert, _ := os.ReadFile(replaced.Cert)
	replacedKey, _ := os.ReadFile(replaced.Key)
	f.enroll(t, "us-cart") // enrolling again replaces the certificate
	write(t, filepath.Join(f.dir, "stale.crt"), replacedCert)
	write(t, filepath.Join(f.dir, "stale.key"), replacedKey)
	stranger := filepath.Join(f.dir, "stranger")
	certPEM, keyPEM, _ := server.SelfSigned("elsewhere", []string{"mr-console"}, nil)
	write(t, stranger+".crt", certPEM)
	write(t, stranger+".key", keyPEM)

	ok, _ := json.Marshal(agent.Batch{Alerts: []agent.Report{{ID: "x1", Alert: sample("a")}}})
	unknownField := []byte(`{"alerts":[{"id":"x","kind":"k","severity":"high","reason":"r","extra":1}]}`)
	tooMany := make([]agent.Report, agent.MaxBatch+1)
	for i := range tooMany {
		tooMany[i] = agent.Report{ID: "id", Alert: sample("a")}
	}
	many, _ := json.Marshal(agent.Batch{Alerts: tooMany})
	badID, _ := json.Marshal(agent.Batch{Alerts: []agent.Report{{ID: "../x", Alert: sample("a")}}})
	tests := []struct {
		name      string
		cert, key string
		body      []byte
		status    int
	}{
		{"no certificate", "", "", ok, http.StatusUnauthorized},
		{"revoked", revoked.Cert, revoked.Key, ok, http.StatusForbidden},
		{"replaced by a new enrolment", filepath.Join(f.dir, "stale.crt"), filepath.Join(f.dir, "stale.key"), ok, http.StatusForbidden},
		{"another CA's certificate", stranger + ".crt", stranger + ".key", ok, http.StatusForbidden},
		{"unknown field", good.Cert, good.Key, unknownField, http.StatusBadRequest},
		{"too many alerts", good.Cert, good.Key, many, http.StatusBadRequest},
		{"bad id", good.Cert, good.Key, badID, http.StatusBadRequest},
		{"not JSON", good.Cert, good.Key, []byte("alerts please"), http.StatusBadRequest},
		{"good", good.Cert, good.Key, ok, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := clientWith(t, tt.cert, tt.key, f.caFile).Post(f.url, "application/json", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	denied := 0
	for _, e := range f.events(t, "guard.alert") {
		if e.Outcome == audit.Denied {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d refused certificates audited, want 3", denied)
	}
	if n := len(f.guardAlerts(t)); n != 1 {
		t.Errorf("%d alerts stored, want only the good one", n)
	}
}

func TestEnrollBadNames(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"", "../etc", "a b", strings.Repeat("x", 64), "-lead"} {
		if _, err := f.reg.Enroll(context.Background(), name, "cli:test", 0); !errors.Is(err, workstation.ErrInvalid) {
			t.Errorf("enroll %q: got %v, want ErrInvalid", name, err)
		}
	}
	if err := f.reg.Revoke(context.Background(), "nobody", "cli:test", "x"); !errors.Is(err, workstation.ErrNotFound) {
		t.Errorf("revoke unknown: got %v, want ErrNotFound", err)
	}
}

// TestUnreachableServerKeepsAlerts: alerts wait while the server is down
// and go once it answers; a full backlog stops the agent.
func TestUnreachableServerKeepsAlerts(t *testing.T) {
	f := newFixture(t)
	c := f.enroll(t, "xray-pc")
	down := c
	down.URL = "https://127.0.0.1:1/guard/alerts"
	r := remote(t, down)
	var warned int
	r.Warn = func(error) { warned++ }
	if err := r.Send(context.Background(), []agent.Alert{sample("a"), sample("b")}); err != nil {
		t.Fatalf("send to a down server: %v, want the alerts kept", err)
	}
	if r.Pending() != 2 || warned != 1 {
		t.Fatalf("pending %d, warnings %d; want 2 and 1", r.Pending(), warned)
	}
	small := down
	small.MaxPending = 1
	if err := remote(t, small).Send(context.Background(), []agent.Alert{sample("a"), sample("b")}); !errors.Is(err, agent.ErrBacklog) {
		t.Errorf("full backlog: got %v, want ErrBacklog", err)
	}
	// The same alerts, once the server is back (a second agent process
	// would have lost them; this one kept them in order).
	up := remote(t, c)
	if err := up.Send(context.Background(), []agent.Alert{sample("a"), sample("b")}); err != nil || up.Pending() != 0 {
		t.Errorf("delivery to a live server: %v, %d pending", err, up.Pending())
	}
}

// TestAgentReportsFileChange runs the real agent's integrity check on a
// protected directory the test changes; the alert reaches the server.
func TestAgentReportsFileChange(t *testing.T) {
	f := newFixture(t)
	c := f.enroll(t, "pacs-viewer-2")
	protected := t.TempDir()
	write(t, filepath.Join(protected, "viewer.cfg"), []byte("port=104\n"))
	src, stop, err := agent.SystemProcesses()
	if err != nil {
		t.Skipf("no process source on this system: %v", err)
	}
	var local bytes.Buffer
	a, err := agent.New(context.Background(), agent.Config{Mode: agent.ModeAlert, Protect: []string{protected}}, src, stop,
		agent.Tee{&agent.JSONLines{W: &local}, remote(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(protected, "viewer.cfg"), []byte("port=4444\n"))
	if err := a.CheckIntegrity(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := f.guardAlerts(t)
	if len(got) != 1 || !strings.Contains(got[0].Summary, string(agent.FileModified)) || !strings.Contains(local.String(), "viewer.cfg") {
		t.Errorf("inbox %+v, local %q; want the file change in both", got, local.String())
	}
}

func mustPool(t *testing.T, pem []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in PEM")
	}
	return p
}
