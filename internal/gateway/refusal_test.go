package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
)

// forge seals a message in d's name (and for its patient) signed with
// another key: what an impostor sends.
func (p *pipeline) forge(serial string, seq uint64) []byte {
	p.t.Helper()
	key, _ := device.GenerateKey(device.KeyP256)
	signer, _ := phd.NewDeviceSigner(serial, key)
	return p.sealWith(signer, serial, seq)
}

func (p *pipeline) sealWith(signer *phd.DeviceSigner, serial string, seq uint64) []byte {
	p.t.Helper()
	mid, _ := phd.NewMessageID()
	now := p.clock.now()
	b := phd.Batch{DeviceID: serial, Patient: p.patient.Pseudonym, Seq: seq, MessageID: mid, Sent: now,
		Measurements: device.NewGenerator(5, 0).Batch(2, now.Add(-time.Minute), time.Second)}
	msg, err := phd.Seal(b, signer, p.in.PublicKey())
	if err != nil {
		p.t.Fatal(err)
	}
	return msg
}

// refusalEvents reads the hospital's gateway.refuse events.
func (p *pipeline) refusalEvents() []audit.Event {
	p.t.Helper()
	var out []audit.Event
	err := audit.Scan(context.Background(), p.h.DB, "main", 0, 0, func(e audit.Event) error {
		if e.Action == "gateway.refuse" {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// waitUntil polls ok for up to 30 s (a liveness bound, not a speed check).
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 30 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *pipeline) pendingRefusals() (int, int64) {
	p.t.Helper()
	n, refused, err := p.gw.PendingRefusals(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	return n, refused
}

// TestRefusalsAuditedAtTheHospitalOnce: a forged message and a replay
// refused while the hospital is down (and the gateway restarted) reach the
// hospital's audit log once it is up, once each although the first
// delivery's answer is lost and the gateway sends them again.
func TestRefusalsAuditedAtTheHospitalOnce(t *testing.T) {
	p := newPipeline(t, nil)
	ctx := context.Background()
	p.gate.down.Store(true)
	d := p.device("SN-R")
	if _, err := d.sender.Send(ctx, p.seal(d, 1)); err != nil {
		t.Fatal(err)
	}
	genuine, _ := phd.NewDeviceSigner("SN-R", d.creds.Key)
	_, err := d.sender.Send(ctx, p.forge("SN-R", 100))
	checkRefused(t, err, 403, phd.ReasonBadSignature)
	_, err = d.sender.Send(ctx, p.sealWith(genuine, "SN-R", 1)) // number 1 again, another message
	checkRefused(t, err, 409, phd.ReasonReplayDuplicate)

	waitUntil(t, "the gateway tries the hospital", func() bool { return p.gate.refused.Load() >= 2 })
	p.stopGateway()
	p.startGateway(nil)
	if n, refused := p.pendingRefusals(); n != 2 || refused != 2 {
		t.Fatalf("after a restart the gateway holds %d records of %d refusals, want 2 of 2", n, refused)
	}
	if ev := p.refusalEvents(); len(ev) != 0 {
		t.Fatalf("%d refusal events while the hospital was down", len(ev))
	}
	p.gate.lose.Store(1)
	p.gate.down.Store(false)
	waitUntil(t, "the refusal records delivered", func() bool { n, _ := p.pendingRefusals(); return n == 0 })
	if p.gate.lost.Load() != 1 {
		t.Fatalf("%d deliveries lost their answer, want 1 (the test did not retry)", p.gate.lost.Load())
	}
	got := map[string]audit.Event{}
	for _, e := range p.refusalEvents() {
		code, _, _ := strings.Cut(e.Reason, ":")
		if _, dup := got[code]; dup {
			t.Errorf("%s audited twice", code)
		}
		got[code] = e
	}
	for _, reason := range []phd.Reason{phd.ReasonBadSignature, phd.ReasonReplayDuplicate} {
		e, ok := got[string(reason)]
		if !ok {
			t.Errorf("no audit event for the %s refusal (events %v)", reason, got)
			continue
		}
		if e.Actor != "gateway:gw-test" || e.Resource != "device/SN-R" || e.Patient != p.patient.Pseudonym ||
			e.Outcome != audit.Denied || !strings.HasPrefix(e.Reason, string(reason)+": 1 message refused") {
			t.Errorf("%s event = %+v, want gateway:gw-test, device/SN-R, the patient's pseudonym, denied, 1 message", reason, e)
		}
	}
	if len(got) != 2 {
		t.Errorf("%d kinds of refusal audited, want 2", len(got))
	}
}

// TestRefusalFloodIsBounded: 10,000 bad messages from one device become
// a handful of records and audit events whose counts add up to 10,000,
// and one alert for the security officer.
func TestRefusalFloodIsBounded(t *testing.T) {
	p := newPipeline(t, func(c *gateway.Config) { c.DeviceRate = -1 })
	ctx := context.Background()
	d := p.device("SN-FLOOD")
	forged, malformed := p.forge("SN-FLOOD", 7), []byte("\xd2\x84garbage")
	const workers, each = 8, 1250
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := map[phd.Reason]int{}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				msg := forged
				if (w+i)%2 == 0 {
					msg = malformed
				}
				_, err := d.sender.Send(ctx, msg)
				var ref *gateway.Refused
				if !errors.As(err, &ref) {
					t.Errorf("a bad message was not refused: %v", err)
					return
				}
				mu.Lock()
				refused[ref.Reason]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if refused[phd.ReasonBadSignature] != 5000 || refused[phd.ReasonMalformed] != 5000 {
		t.Fatalf("refused %v, want 5000 bad-signature and 5000 malformed", refused)
	}
	if n, _ := p.pendingRefusals(); n > 20 {
		t.Errorf("the gateway holds %d refusal records after the flood, want a handful", n)
	}
	total := map[string]int64{}
	var events []audit.Event
	waitUntil(t, "every refusal audited", func() bool {
		events, total = p.refusalEvents(), map[string]int64{}
		for _, e := range events {
			code, count := parseCount(t, e.Reason)
			total[code] += count
		}
		return total["bad-signature"]+total["malformed"] >= 10000
	})
	if total["bad-signature"] != 5000 || total["malformed"] != 5000 {
		t.Errorf("audited counts %v, want 5000 each", total)
	}
	if len(events) > 20 {
		t.Errorf("%d audit events for one flood, want a handful", len(events))
	}
	for _, e := range events {
		if e.Resource != "device/SN-FLOOD" || e.Patient != p.patient.Pseudonym {
			t.Errorf("event names %q / %q, want device/SN-FLOOD and the patient's pseudonym", e.Resource, e.Patient)
		}
	}
	as, err := p.alerts.List(ctx, alerts.Filter{Kind: alerts.KindAuthFailure})
	if err != nil {
		t.Fatal(err)
	}
	// One alert per device and 10-minute window: two only if the flood
	// straddled a window's end.
	if len(as) < 1 || len(as) > 2 || as[0].Subject != "device:SN-FLOOD" || as[0].Patient != p.patient.Pseudonym {
		t.Errorf("alerts %+v, want one on device:SN-FLOOD with the patient's pseudonym", as)
	}
	t.Logf("10000 refusals: %d audit events, %d alerts", len(events), len(as))
}

// parseCount reads "reason: N message(s) refused …".
func parseCount(t *testing.T, reason string) (string, int64) {
	t.Helper()
	code, rest, _ := strings.Cut(reason, ": ")
	var n int64
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	if n == 0 {
		t.Fatalf("no count in %q", reason)
	}
	return code, n
}

// TestRefusalRecordsCapped: refusals from 1,000 addresses in one minute
// (what a flood from many sources looks like) open at most 60 records;
// the rest are counted in one record from many sources, and the total
// stays right. The next minute opens records again.
func TestRefusalRecordsCapped(t *testing.T) {
	ctx := context.Background()
	q, err := gateway.OpenQueue(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	minute := time.Now().Truncate(time.Minute).Add(-2 * time.Minute)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := range 100 {
				rf := gateway.Refusal{Subject: fmt.Sprintf("%s192.0.2.%d", ingest.SubjectAddress, w*100+i),
					Reason: devices.ReasonCertificateMissing, At: minute.Add(time.Duration(i) * 100 * time.Millisecond)}
				if err := q.RecordRefusal(ctx, rf); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	next := gateway.Refusal{Subject: ingest.SubjectAddress + "198.51.100.1", Reason: devices.ReasonCertificateMissing, At: minute.Add(time.Minute)}
	if err := q.RecordRefusal(ctx, next); err != nil {
		t.Fatal(err)
	}
	n, refused, err := q.PendingRefusals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 62 || refused != 1001 {
		t.Errorf("%d records of %d refusals, want 62 (60 addresses, many, next minute) of 1001", n, refused)
	}
	recs, err := q.SealRefusals(ctx, time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var many int64
	for _, r := range recs {
		if r.Subject == ingest.SubjectMany {
			many += r.Count
		}
	}
	if len(recs) != 62 || many != 940 {
		t.Errorf("sealed %d records, many sources counted %d; want 62 and 940", len(recs), many)
	}
}
