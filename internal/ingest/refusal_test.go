package ingest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// refusalServer is ingestion with an alert inbox over real TLS.
type refusalServer struct {
	f     *fixture
	inbox *alerts.Inbox
	url   string
	roots *x509.CertPool
}

func newRefusalServer(t *testing.T, db *store.DB) *refusalServer {
	t.Helper()
	if err := db.Migrate(context.Background(), alerts.Migrations); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, db)
	s := &refusalServer{f: f, inbox: alerts.New(db, f.h.Audit)}
	in, err := ingest.New(context.Background(), ingest.Config{DB: db, Keys: f.h.Keys, Audit: f.h.Audit, Door: f.h.Door,
		Authority: f.a, Alerts: s.inbox, RefusalAlertThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(in.Handler())
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url, s.roots = srv.URL+ingest.PathRefusals, x509.NewCertPool()
	s.roots.AddCert(srv.Certificate())
	return s
}

func (s *refusalServer) post(t *testing.T, creds *devices.Credentials, recs ...ingest.RefusalRecord) (int, ingest.RefusalAnswer) {
	t.Helper()
	body, _ := json.Marshal(ingest.RefusalBatch{Records: recs})
	resp := post(t, s.url, s.roots, creds, body)
	defer resp.Body.Close()
	var ans ingest.RefusalAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, ans
}

// TestOnlyActiveGatewaysMayPostRefusals: the refusal endpoint takes the
// same callers as the bundle endpoint, and nobody else's records reach
// the audit log.
func TestOnlyActiveGatewaysMayPostRefusals(t *testing.T) {
	s := newRefusalServer(t, storetest.OpenSQLite(t))
	f := s.f
	stopped := devicestest.EnrollGateway(t, f.a, "gw-stopped")
	if _, err := f.a.SetStatus(context.Background(), "gw-stopped", devices.StatusSuspended, "maintenance", "cli:it"); err != nil {
		t.Fatal(err)
	}
	dev := f.device("SN-NOT-A-GW", device.KeyP256)
	rec := refusal("rf_x", ingest.SubjectDevice+"SN-NOT-A-GW", phd.ReasonBadSignature, 1)
	for _, tt := range []struct {
		name   string
		creds  *devices.Credentials
		status int
	}{
		{"no client certificate", nil, http.StatusUnauthorized},
		{"a device's certificate", dev.creds, http.StatusForbidden},
		{"another CA's gateway", foreignCredentials(t), http.StatusForbidden},
		{"suspended gateway", stopped, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := s.post(t, tt.creds, rec); got != tt.status {
				t.Errorf("status %d, want %d", got, tt.status)
			}
		})
	}
	if n := countRefusalEvents(t, f, nil); n != 0 {
		t.Errorf("%d gateway.refuse events from callers that are not active gateways, want 0", n)
	}
}

// TestRefusalRecordsAuditedOnce: each record becomes one audit event
// naming the device and its patient's pseudonym, however often it is
// posted; malformed records are refused alone; a device that keeps
// failing signatures raises one alert.
func TestRefusalRecordsAuditedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newRefusalServer(t, db)
		f := s.f
		gw := devicestest.EnrollGateway(t, f.a, "gw-r")
		f.device("SN-R1", device.KeyP256)
		batch := []ingest.RefusalRecord{
			refusal("rf_1", ingest.SubjectDevice+"SN-R1", phd.ReasonBadSignature, 2),
			refusal("rf_2", ingest.SubjectDevice+"SN-R1", phd.ReasonReplayDuplicate, 1),
			refusal("rf_3", ingest.SubjectAddress+"192.0.2.7", devices.ReasonCertificateMissing, 40),
			refusal("rf_4", "patient:Kim", phd.ReasonMalformed, 1),
		}
		want := []string{ingest.Stored, ingest.Stored, ingest.Stored, ingest.Rejected}
		for round, again := range []bool{false, true} {
			status, ans := s.post(t, gw, batch...)
			if status != http.StatusOK || len(ans.Results) != len(batch) {
				t.Fatalf("round %d: status %d, answer %+v", round, status, ans)
			}
			for i, r := range ans.Results {
				w := want[i]
				if again && w == ingest.Stored {
					w = ingest.Duplicate
				}
				if r.ID != batch[i].ID || r.Status != w {
					t.Errorf("round %d: record %s answered %s (%s), want %s", round, batch[i].ID, r.Status, r.Detail, w)
				}
			}
		}
		events := map[string]audit.Event{}
		countRefusalEvents(t, f, func(e audit.Event) { events[strings.SplitN(e.Reason, ":", 2)[0]] = e })
		if n := countRefusalEvents(t, f, nil); n != 3 {
			t.Errorf("%d gateway.refuse events, want 3 (one per valid record)", n)
		}
		sig := events[string(phd.ReasonBadSignature)]
		if sig.Actor != "gateway:gw-r" || sig.Resource != "device/SN-R1" || sig.Patient != f.patient.Pseudonym || sig.Outcome != audit.Denied ||
			!strings.HasPrefix(sig.Reason, "bad-signature: 2 messages refused") {
			t.Errorf("bad-signature event = %+v, want gateway gw-r, device/SN-R1, the patient's pseudonym, denied, count 2", sig)
		}
		addr := events[string(devices.ReasonCertificateMissing)]
		if addr.Patient != "" || addr.Resource != "" || addr.Source != "address:192.0.2.7" {
			t.Errorf("address event = %+v, want no patient, no resource, source address:192.0.2.7", addr)
		}
		checkAlerts(t, s.inbox, map[string]string{ingest.SubjectAddress + "192.0.2.7": ""})

		// One more forged message from SN-R1 takes it to the threshold (3):
		// one alert, naming the device and its patient; another, none more.
		for _, id := range []string{"rf_5", "rf_6"} {
			s.post(t, gw, refusal(id, ingest.SubjectDevice+"SN-R1", phd.ReasonBadSignature, 1))
		}
		checkAlerts(t, s.inbox, map[string]string{ingest.SubjectAddress + "192.0.2.7": "", ingest.SubjectDevice + "SN-R1": f.patient.Pseudonym})
	})
}

func refusal(id, subject string, reason phd.Reason, n int64) ingest.RefusalRecord {
	at := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	return ingest.RefusalRecord{ID: id, Subject: subject, Reason: reason, Count: n, First: at, Last: at}
}

// countRefusalEvents counts (and hands to fn) the gateway.refuse events.
func countRefusalEvents(t *testing.T, f *fixture, fn func(audit.Event)) int {
	t.Helper()
	n := 0
	err := audit.Scan(context.Background(), f.h.DB, "main", 0, 0, func(e audit.Event) error {
		if e.Action == "gateway.refuse" {
			n++
			if fn != nil {
				fn(e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkAlerts wants exactly one authentication alert per subject, with
// the patient pseudonym given.
func checkAlerts(t *testing.T, inbox *alerts.Inbox, want map[string]string) {
	t.Helper()
	got, err := inbox.List(context.Background(), alerts.Filter{Kind: alerts.KindAuthFailure})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, a := range got {
		seen[a.Subject]++
		if p, ok := want[a.Subject]; !ok || a.Patient != p {
			t.Errorf("alert %q (patient %q) unexpected; want subjects %v", a.Summary, a.Patient, want)
		}
	}
	for s := range want {
		if seen[s] != 1 {
			t.Errorf("%d alerts on %s, want 1", seen[s], s)
		}
	}
}
