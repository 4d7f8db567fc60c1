package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestReadingsTravelToTheHospital(t *testing.T) {
	p := newPipeline(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, serial := range []string{"SN-E1", "SN-E2", "SN-E3"} {
		d := p.device(serial)
		wg.Go(func() {
			for range 10 {
				ack, err := d.sender.Send(ctx, p.seal(d, 3))
				if err != nil || ack.Status != gateway.AckQueued {
					t.Errorf("%s: ack %+v, err %v", serial, ack, err)
				}
			}
		})
	}
	wg.Wait()
	p.waitStored(p.patient.ID, 90)
	waitQueueEmpty(t, p.gw)
}

func waitQueueEmpty(t *testing.T, gw *gateway.Gateway) {
	t.Helper()
	for range 300 {
		if gw.Queued() == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("queue still holds %d messages", gw.Queued())
}

// TestGatewayRefuses sends every kind of bad input a device (or an
// impostor) can send and checks the reason code of each refusal.
func TestGatewayRefuses(t *testing.T) {
	p := newPipeline(t, nil)
	ctx := context.Background()
	good := p.device("SN-GOOD")
	other := p.h.Patient(t)
	otherDev := p.deviceFor(other.ID, "SN-OTHER")
	forgerKey, _ := device.GenerateKey(device.KeyP256)
	signer, _ := phd.NewDeviceSigner("SN-GOOD", forgerKey)
	seal := func(b phd.Batch, s *phd.DeviceSigner) []byte {
		b.MessageID, _ = phd.NewMessageID()
		if b.Sent.IsZero() {
			b.Sent = time.Now()
		}
		msg, err := phd.Seal(b, s, p.in.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	ms := device.NewGenerator(3, 0).Batch(2, time.Now().Add(-time.Minute), time.Second)
	goodSigner, _ := phd.NewDeviceSigner("SN-GOOD", good.creds.Key)
	otherSigner, _ := phd.NewDeviceSigner("SN-OTHER", otherDev.creds.Key)
	first := p.seal(good, 1)
	if _, err := good.sender.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	t.Run("redelivery acknowledged again", func(t *testing.T) {
		ack, err := good.sender.Send(ctx, first)
		if err != nil || ack.Status != gateway.AckDuplicate {
			t.Errorf("redelivery: ack %+v, err %v; want duplicate", ack, err)
		}
	})
	t.Run("sequence number reused", func(t *testing.T) {
		reused := seal(phd.Batch{DeviceID: "SN-GOOD", Patient: p.patient.Pseudonym, Seq: 1, Measurements: ms}, goodSigner)
		_, err := good.sender.Send(ctx, reused)
		checkRefused(t, err, 409, phd.ReasonReplayDuplicate)
	})
	late := seal(phd.Batch{DeviceID: "SN-GOOD", Patient: p.patient.Pseudonym, Seq: 2000, Measurements: ms}, goodSigner)
	if _, err := good.sender.Send(ctx, late); err != nil {
		t.Fatal(err)
	}
	tooOld := seal(phd.Batch{DeviceID: "SN-GOOD", Patient: p.patient.Pseudonym, Seq: 2, Measurements: ms}, goodSigner)
	future := seal(phd.Batch{DeviceID: "SN-GOOD", Patient: p.patient.Pseudonym, Seq: 5000, Sent: time.Now().Add(time.Hour), Measurements: ms}, goodSigner)

	for _, tt := range []struct {
		name   string
		sender *gateway.Sender
		msg    []byte
		status int
		reason phd.Reason
	}{
		{"forged signature", good.sender, seal(phd.Batch{DeviceID: "SN-GOOD", Patient: p.patient.Pseudonym, Seq: 3000, Measurements: ms}, signer), 403, phd.ReasonBadSignature},
		{"message names another device", otherDev.sender, p.seal(good, 1), 403, phd.ReasonCertificateMismatch},
		{"certificate for another patient", otherDev.sender, seal(phd.Batch{DeviceID: "SN-OTHER", Patient: p.patient.Pseudonym, Seq: 1, Measurements: ms}, otherSigner), 403, phd.ReasonCertificateMismatch},
		{"out of the replay window", good.sender, tooOld, 409, phd.ReasonReplayTooOld},
		{"future timestamp", good.sender, future, 400, phd.ReasonTimestampFuture},
		{"oversized", good.sender, bytes.Repeat([]byte{0x40}, phd.DefaultLimits().MaxMessageBytes+10), 413, phd.ReasonTooLarge},
		{"malformed", good.sender, []byte("\xd2\x84garbage"), 400, phd.ReasonMalformed},
		{"no client certificate", anonymousSender(t, p), p.seal(good, 1), 401, devices.ReasonCertificateMissing},
		{"another CA's certificate", foreignSender(t, p), p.seal(good, 1), 403, devices.ReasonCertificateUntrusted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.sender.Send(ctx, tt.msg)
			checkRefused(t, err, tt.status, tt.reason)
		})
	}
	p.waitStored(p.patient.ID, 3) // first (1 reading) and late (2), once each
	checkRejectedCounted(t, p.gw, map[phd.Reason]int{phd.ReasonBadSignature: 1, phd.ReasonCertificateMismatch: 2,
		phd.ReasonReplayDuplicate: 1, phd.ReasonReplayTooOld: 1, phd.ReasonTimestampFuture: 1, phd.ReasonTooLarge: 1,
		phd.ReasonMalformed: 1, devices.ReasonCertificateMissing: 1, devices.ReasonCertificateUntrusted: 1})
}

// checkRejectedCounted reads the gateway's Prometheus metrics and checks
// that each refusal was counted under its reason.
func checkRejectedCounted(t *testing.T, gw *gateway.Gateway, want map[phd.Reason]int) {
	t.Helper()
	rec := httptest.NewRecorder()
	gw.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for reason, n := range want {
		line := fmt.Sprintf("medsec_gateway_rejected_total{reason=%q} %d\n", reason, n)
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("metrics lack %q", strings.TrimSpace(line))
		}
	}
}

func checkRefused(t *testing.T, err error, status int, reason phd.Reason) {
	t.Helper()
	var ref *gateway.Refused
	if !errors.As(err, &ref) {
		t.Fatalf("got %v, want a refusal %s", err, reason)
	}
	if ref.Status != status || ref.Reason != reason {
		t.Errorf("refused with %d %s (%s), want %d %s", ref.Status, ref.Reason, ref.Detail, status, reason)
	}
	if ref.Detail == "" {
		t.Errorf("refusal %s has no detail a person can act on", ref.Reason)
	}
}

// anonymousSender presents no client certificate.
func anonymousSender(t *testing.T, p *pipeline) *gateway.Sender {
	return senderWith(t, p, nil)
}

func senderWith(t *testing.T, p *pipeline, cert *tls.Certificate) *gateway.Sender {
	t.Helper()
	roots := p.gwCreds.Pool()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return gateway.NewSenderWithClient(p.gwURL, &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}})
}

// foreignSender presents a device certificate from another hospital.
func foreignSender(t *testing.T, p *pipeline) *gateway.Sender {
	other := devicestest.New(t, storetest.OpenSQLite(t))
	a := other.Authority(t)
	creds := devicestest.EnrollDevice(t, a, other.Patient(t).ID, "SN-GOOD", device.KeyP256, p.in.PublicKey())
	cert := creds.TLSCertificate()
	return senderWith(t, p, &cert)
}

// TestRevocationReachesTheGatewayInSeconds: a device revoked (or suspended,
// or reported lost) at the hospital is refused by the gateway within
// seconds, and a resumed one is accepted again.
func TestRevocationReachesTheGatewayInSeconds(t *testing.T) {
	p := newPipeline(t, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		serial string
		status devices.Status
		reason phd.Reason
	}{
		{"SN-REV", devices.StatusRevoked, devices.ReasonDeviceRevoked},
		{"SN-SUS", devices.StatusSuspended, devices.ReasonDeviceSuspended},
		{"SN-LOST", devices.StatusLost, devices.ReasonDeviceLost},
	} {
		d := p.device(tt.serial)
		if _, err := d.sender.Send(ctx, p.seal(d, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := p.a.SetStatus(ctx, tt.serial, tt.status, "test", "cli:officer"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			_, err := d.sender.Send(ctx, p.seal(d, 1))
			var ref *gateway.Refused
			if errors.As(err, &ref) && ref.Reason == tt.reason {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s still accepted %s after being %s", tt.serial, time.Since(start), tt.status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: %s refused after %s", tt.serial, tt.status, time.Since(start).Round(time.Millisecond))
	}
	if _, err := p.a.SetStatus(ctx, "SN-SUS", devices.StatusActive, "found", "cli:officer"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		d := p.device("SN-SUS2")
		_, err := d.sender.Send(ctx, p.seal(d, 1))
		return err == nil
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 100 {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not reached in 5 s")
}

// TestExpiredCertificateRefused: a device whose certificate has expired is
// refused with certificate-expired (it must renew).
func TestExpiredCertificateRefused(t *testing.T) {
	p := newPipeline(t, nil)
	d := p.device("SN-EXP")
	p.clock.set(8 * 24 * time.Hour)
	_, err := d.sender.Send(context.Background(), p.seal(d, 1))
	checkRefused(t, err, 403, devices.ReasonCertificateExpired)
}

func TestRateLimitPerDevice(t *testing.T) {
	p := newPipeline(t, func(c *gateway.Config) { c.DeviceRate, c.DeviceBurst = 1, 3 })
	ctx := context.Background()
	d, calm := p.device("SN-CHATTY"), p.device("SN-CALM")
	var limited *gateway.Refused
	for i := range 6 {
		_, err := d.sender.Send(ctx, p.seal(d, 1))
		if errors.As(err, &limited) {
			if i < 3 {
				t.Errorf("refused message %d within the burst of 3", i+1)
			}
			break
		}
	}
	if limited == nil || limited.Reason != gateway.ReasonRateLimited || limited.RetryAfter < time.Second {
		t.Fatalf("a device over its rate was not refused with rate-limited and Retry-After: %+v", limited)
	}
	if _, err := calm.sender.Send(ctx, p.seal(calm, 1)); err != nil {
		t.Errorf("another device was limited too: %v", err)
	}
}

// TestQueueOutlivesTheGatewayAndTheHospital: with the hospital away, the
// gateway acknowledges and queues; stopped and reopened, it still holds the
// queue and delivers everything, once, when the hospital is back.
func TestQueueOutlivesTheGatewayAndTheHospital(t *testing.T) {
	p := newPipeline(t, nil)
	ctx := context.Background()
	d := p.device("SN-Q")
	p.stopGateway()
	cfg := p.gatewayConfig()
	p.startGateway(func(c *gateway.Config) { c.Upstream = "https://127.0.0.1:1" }) // nobody there
	d.sender = gateway.NewSender(p.gwURL, d.creds)
	for range 5 {
		if _, err := d.sender.Send(ctx, p.seal(d, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.gw.Queued(); got != 5 {
		t.Errorf("queued %d, want 5 while the hospital is away", got)
	}
	p.stopGateway()
	p.startGateway(func(c *gateway.Config) { *c = cfg })
	d.sender = gateway.NewSender(p.gwURL, d.creds)
	p.waitStored(p.patient.ID, 10)
	waitQueueEmpty(t, p.gw)
	ack, err := d.sender.Send(ctx, p.seal(d, 1))
	if err != nil || !strings.EqualFold(ack.Status, gateway.AckQueued) {
		t.Errorf("after reopening: %+v %v", ack, err)
	}
}

// TestRetriedMessageDoesNotHoldUpTheQueue: a message the hospital keeps
// answering "retry" (here: another delivery of it looks in progress) is
// left for a later pass; the messages behind it are delivered meanwhile,
// and it is delivered once the hospital can take it.
func TestRetriedMessageDoesNotHoldUpTheQueue(t *testing.T) {
	p := newPipeline(t, func(c *gateway.Config) { c.Forwarders, c.BundleSize = 1, 1 })
	ctx := context.Background()
	d := p.device("SN-STUCK")
	stuck := p.seal(d, 1)
	s, _ := phd.ParseSigned(stuck, phd.DefaultLimits())
	id := s.Header().MessageID
	claim := `INSERT INTO ingest_messages (message_id, device, seq, gateway, sent_at, state, owner, claimed_at) VALUES (?, 'SN-STUCK', 1, 'gw', 0, 'pending', 'ingest-elsewhere', ?)`
	if _, err := p.h.DB.Exec(ctx, claim, id[:], time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.sender.Send(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := d.sender.Send(ctx, p.seal(d, 1)); err != nil {
			t.Fatal(err)
		}
	}
	p.waitStored(p.patient.ID, 5)
	if _, err := p.h.DB.Exec(ctx, `DELETE FROM ingest_messages WHERE message_id = ?`, id[:]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.storedReadings(p.patient.ID) < 6 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	p.waitStored(p.patient.ID, 6)
	waitQueueEmpty(t, p.gw)
}

// TestSimulateEndsWhenTheGatewayIsAway: a simulated fleet facing a gateway
// that does not answer stops resending after the grace period and counts
// the unacknowledged messages as errors (it used to resend for ever, deaf
// even to an interrupt).
func TestSimulateEndsWhenTheGatewayIsAway(t *testing.T) {
	p := newPipeline(t, nil)
	creds := devicestest.EnrollDevice(t, p.a, p.patient.ID, "SN-AWAY", device.KeyP256, p.in.PublicKey())
	ctr, err := device.OpenCounter(filepath.Join(t.TempDir(), "seq"), 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan gateway.SimulateReport, 1)
	go func() {
		rep, _ := gateway.Simulate(context.Background(), gateway.SimulateOptions{Fleet: []gateway.FleetDevice{{Creds: creds, Counter: ctr}},
			Gateway: "https://127.0.0.1:1", Rate: 10, For: 200 * time.Millisecond, Grace: 300 * time.Millisecond})
		done <- rep
	}()
	select {
	case rep := <-done:
		if rep.Acknowledged != 0 || rep.Errors == 0 || rep.Errors != rep.Sent {
			t.Errorf("report %+v, want every message sent counted as an error", rep)
		}
	case <-time.After(time.Minute): // a liveness bound, not a speed check
		t.Fatal("simulate still resends a minute after its play and grace ended")
	}
}
