package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store/storetest"
)

// clock is a settable time source safe for concurrent use.
type clock struct {
	mu    sync.Mutex
	shift time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.shift)
}

func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	c.shift = d
	c.mu.Unlock()
}

// pipeline is a hospital (ingestion over real TLS), a running gateway and
// a patient, all in-process on loopback.
type pipeline struct {
	t       *testing.T
	h       *devicestest.Hospital
	a       *devices.Authority
	in      *ingest.Ingester
	server  *httptest.Server
	gw      *gateway.Gateway
	gwURL   string
	gwDir   string
	gwCreds *devices.Credentials
	clock   *clock
	stop    context.CancelFunc
	done    chan error
	patient records.Patient
	alerts  *alerts.Inbox
	gate    gate
}

// gate plays hospital trouble on the refusal endpoint: while down it
// answers 503 without looking; with answers to lose it handles a request
// and then answers 502, as if the answer never reached the gateway.
type gate struct {
	down    atomic.Bool
	lose    atomic.Int32
	refused atomic.Int32 // requests answered 503 while down
	lost    atomic.Int32 // requests handled whose answer was lost
}

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ingest.PathRefusals) {
			next.ServeHTTP(w, r)
			return
		}
		if g.down.Load() {
			g.refused.Add(1)
			http.Error(w, "hospital down", http.StatusServiceUnavailable)
			return
		}
		if g.lose.Add(-1) >= 0 {
			next.ServeHTTP(httptest.NewRecorder(), r)
			g.lost.Add(1)
			http.Error(w, "answer lost", http.StatusBadGateway)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newPipeline(t *testing.T, tune func(*gateway.Config)) *pipeline {
	t.Helper()
	ctx := context.Background()
	h := devicestest.New(t, storetest.OpenSQLite(t), alerts.Migrations, ingest.Migrations)
	p := &pipeline{t: t, h: h, a: h.Authority(t), clock: &clock{}, gwDir: t.TempDir(), alerts: alerts.New(h.DB, h.Audit)}
	var err error
	p.in, err = ingest.New(ctx, ingest.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Authority: p.a, Alerts: p.alerts})
	if err != nil {
		t.Fatal(err)
	}
	api, err := p.a.Handler(p.in.PublicKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/devices", api)
	r.Mount("/ingest", p.in.Handler())
	p.server = httptest.NewUnstartedServer(p.gate.wrap(r))
	p.server.TLS = &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert}
	p.server.StartTLS()
	t.Cleanup(p.server.Close)
	p.gwCreds = devicestest.EnrollGateway(t, p.a, "gw-test")
	p.patient = h.Patient(t)
	p.startGateway(tune)
	t.Cleanup(p.stopGateway)
	return p
}

func (p *pipeline) gatewayConfig() gateway.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.server.Certificate())
	return gateway.Config{Dir: p.gwDir, Credentials: p.gwCreds, Upstream: p.server.URL, UpstreamRoots: roots,
		PollInterval: 100 * time.Millisecond, DeviceRate: 1000, DeviceBurst: 1000, Now: p.clock.now}
}

func (p *pipeline) startGateway(tune func(*gateway.Config)) {
	p.t.Helper()
	cfg := p.gatewayConfig()
	if tune != nil {
		tune(&cfg)
	}
	gw, err := gateway.Open(context.Background(), cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.gw, p.gwURL, p.stop, p.done = gw, "https://"+ln.Addr().String(), cancel, make(chan error, 1)
	go func() { p.done <- gw.Run(ctx, ln) }()
}

func (p *pipeline) stopGateway() {
	if p.stop == nil {
		return
	}
	p.stop()
	if err := <-p.done; err != nil && !errors.Is(err, context.Canceled) {
		p.t.Errorf("gateway stopped with %v", err)
	}
	p.stop = nil
}

// testDevice is an enrolled device with its agent and its link.
type testDevice struct {
	creds  *devices.Credentials
	agent  *device.Agent
	sender *gateway.Sender
}

func (p *pipeline) device(serial string) *testDevice {
	p.t.Helper()
	return p.deviceFor(p.patient.ID, serial)
}

func (p *pipeline) deviceFor(patientID, serial string) *testDevice {
	p.t.Helper()
	creds := devicestest.EnrollDevice(p.t, p.a, patientID, serial, device.KeyP256, p.in.PublicKey())
	id, _ := creds.Identity()
	ctr, err := device.OpenCounter(filepath.Join(p.t.TempDir(), "seq"), 1)
	if err != nil {
		p.t.Fatal(err)
	}
	ag, err := device.NewAgent(device.AgentConfig{DeviceID: id.Serial, Patient: id.Patient, Key: creds.Key, Hospital: creds.HospitalKey, Counter: ctr})
	if err != nil {
		p.t.Fatal(err)
	}
	s := gateway.NewSender(p.gwURL, creds)
	p.t.Cleanup(s.Close)
	return &testDevice{creds: creds, agent: ag, sender: s}
}

// seal makes a message of n readings measured just now.
func (p *pipeline) seal(d *testDevice, n int) []byte {
	p.t.Helper()
	now := p.clock.now()
	msg, _, err := d.agent.Seal(device.NewGenerator(uint64(n), 0).Batch(n, now.Add(-time.Minute), 5*time.Second), now)
	if err != nil {
		p.t.Fatal(err)
	}
	return msg
}

// storedReadings counts the patient's stored readings (not provenance).
func (p *pipeline) storedReadings(patientID string) int {
	p.t.Helper()
	recs, err := p.h.Door.Records(context.Background(), records.Request{Who: devicestest.Reader, Purpose: "TREAT"}, patientID,
		records.Filter{Class: records.ClassObservation})
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Code != ingest.ProvenanceCode {
			n++
		}
	}
	return n
}

// waitStored waits until the patient has want readings (and checks it
// stays there a moment: never more).
func (p *pipeline) waitStored(patientID string, want int) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got := p.storedReadings(patientID); got >= want {
			time.Sleep(200 * time.Millisecond)
			if got := p.storedReadings(patientID); got != want {
				p.t.Fatalf("stored %d readings, want exactly %d", got, want)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("stored %d readings after 15 s, want %d", p.storedReadings(patientID), want)
}
