package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/benchref"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/records"
)

// BenchOptions tunes `medsec bench ingest`.
type BenchOptions struct {
	Devices  int           // simulated devices (default 64)
	Patients int           // patients they belong to (default 16)
	Phase    time.Duration // length of each load phase (default 8 s)
	Log      func(format string, args ...any)
}

// BenchReport is what `medsec bench ingest --json` prints. The first
// seven keys are the ones the issue asks for; the rest explain them.
type BenchReport struct {
	Measurements     int     `json:"measurements"`
	Stored           int     `json:"stored"`
	Duplicates       int     `json:"duplicates"`
	PerSecondBatch1  float64 `json:"per_second_batch1"`
	PerSecondBatch32 float64 `json:"per_second_batch32"`
	P99MSBatch1      float64 `json:"p99_ms_batch1"`
	VerifyPerSecond  float64 `json:"verify_per_second"`

	P50MSBatch1         float64 `json:"p50_ms_batch1"`
	LatencyRateBatch1   float64 `json:"latency_rate_batch1"` // messages/s at which the batch-1 latency was measured (half the maximum)
	P50MSBatch1Max      float64 `json:"p50_ms_batch1_at_max"`
	P99MSBatch1Max      float64 `json:"p99_ms_batch1_at_max"`
	P50MSBatch32        float64 `json:"p50_ms_batch32_at_max"`
	P99MSBatch32        float64 `json:"p99_ms_batch32_at_max"`
	VerifyPerSecondCore float64 `json:"verify_per_second_one_core"`
	CeilingBatch1       float64 `json:"ceiling_batch1"` // verify_per_second / 2: every message is verified twice
	RatioBatch1         float64 `json:"ratio_batch1_to_ceiling"`
	Lost                int     `json:"lost"`
	Devices             int     `json:"devices"`
	Cores               int     `json:"cores"`
	Seconds             float64 `json:"seconds"`
}

// Bench runs devices → gateway → server → SQLite over real TLS on
// loopback in a throwaway installation and measures measurements per
// second and send-to-stored latency for batches of 1 and 32, beside the
// machine's ECDSA P-256 verification rate measured in the same run.
func Bench(ctx context.Context, opt BenchOptions) (BenchReport, error) {
	start := time.Now()
	if opt.Devices <= 0 {
		opt.Devices = 64
	}
	if opt.Patients <= 0 {
		opt.Patients = 16
	}
	if opt.Phase <= 0 {
		opt.Phase = 8 * time.Second
	}
	if opt.Log == nil {
		opt.Log = func(string, ...any) {}
	}
	var rep BenchReport
	rep.VerifyPerSecond, rep.VerifyPerSecondCore = verifyCeiling()
	rep.CeilingBatch1 = rep.VerifyPerSecond / 2
	opt.Log("verification ceiling: %.0f ECDSA P-256 verifies/s on %d cores (%.0f on one)", rep.VerifyPerSecond, runtime.NumCPU(), rep.VerifyPerSecondCore)
	b, err := newBench(ctx, opt)
	if err != nil {
		return rep, err
	}
	defer b.close()
	if err := b.run(ctx, opt, &rep); err != nil {
		return rep, err
	}
	rep.Devices, rep.Cores, rep.Seconds = opt.Devices, runtime.NumCPU(), time.Since(start).Seconds()
	return rep, nil
}

// verifyCeiling measures ECDSA P-256 verifications per second on every
// core at once, and on one.
func verifyCeiling() (all, one float64) {
	n := runtime.NumCPU()
	rates := make([]float64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { rates[i] = benchref.Measure(300 * time.Millisecond).ECDSAP256VerifyPerS })
	}
	wg.Wait()
	for _, r := range rates {
		all += r
	}
	return all, benchref.Measure(300 * time.Millisecond).ECDSAP256VerifyPerS
}

// bench is one benchmark installation.
type bench struct {
	dir      string
	h        *hospital.Hospital
	p        *Pipeline
	fleet    []gateway.FleetDevice
	senders  []*gateway.Sender // one per device, kept across phases
	patients []string
	doctor   identity.Principal

	mu    sync.Mutex
	sent  map[phd.MessageID]time.Time
	took  []time.Duration
	last  time.Time
	count int
	done  chan struct{}
	want  int
}

func newBench(ctx context.Context, opt BenchOptions) (*bench, error) {
	dir, err := os.MkdirTemp("", "medsec-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir, sent: map[phd.MessageID]time.Time{}}
	pass := randomHex(16)
	_, err = hospital.Init(ctx, hospital.InitOptions{Dir: dir + "/h", Profile: "large", HospitalName: "medsec bench hospital",
		Passphrase: []byte(pass), AdminPassword: "bench-" + randomHex(12), KDF: keys.KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}})
	if err != nil {
		b.close()
		return nil, err
	}
	if b.h, err = hospital.Open(ctx, dir+"/h", hospital.OpenOptions{Passphrase: []byte(pass)}); err != nil {
		b.close()
		return nil, err
	}
	if err := b.setup(ctx, opt); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func randomHex(n int) string {
	x := make([]byte, n)
	rand.Read(x)
	return hex.EncodeToString(x)
}

func (b *bench) setup(ctx context.Context, opt BenchOptions) error {
	var err error
	b.p, err = Start(ctx, b.h, Options{Dir: b.dir, Stored: b.stored, Gateway: func(c *gateway.Config) { c.DeviceRate = -1 }})
	if err != nil {
		return err
	}
	desk, doctor, err := benchStaff(ctx, b.h)
	if err != nil {
		return err
	}
	b.doctor = doctor
	for i := range opt.Patients {
		pt, err := b.h.Door.RegisterPatient(ctx, records.Request{Who: desk, Purpose: "TREAT"}, records.Patient{
			Name: fmt.Sprintf("Bench Patient %d", i), Department: "internal_medicine", Attending: doctor.ID, ActiveEncounter: true})
		if err != nil {
			return err
		}
		b.patients = append(b.patients, pt.ID)
	}
	for i := range opt.Devices {
		d, err := b.p.EnrollDevice(ctx, b.patients[i%len(b.patients)], fmt.Sprintf("BENCH-%04d", i), "BENCH-1", device.KeyP256)
		if err != nil {
			return err
		}
		b.fleet = append(b.fleet, d)
		b.senders = append(b.senders, gateway.NewSender(b.p.GatewayURL, d.Creds))
	}
	return nil
}

// benchStaff makes a registration clerk and the physician attending every
// bench patient (who reads the stored readings back at the end).
func benchStaff(ctx context.Context, h *hospital.Hospital) (desk, doctor identity.Principal, err error) {
	for _, n := range []identity.NewStaff{
		{Username: "bench.desk", DisplayName: "Bench registration", Role: identity.RoleAdministrative, Department: "administration"},
		{Username: "bench.doctor", DisplayName: "Bench physician", Role: identity.RolePhysician, Department: "internal_medicine"},
	} {
		n.Password = "bench-" + randomHex(12)
		if _, err := h.Staff.Create(ctx, n); err != nil {
			return desk, doctor, err
		}
		p, err := h.Staff.Authenticate(ctx, n.Username, n.Password, "bench")
		if err != nil {
			return desk, doctor, err
		}
		if n.Role == identity.RolePhysician {
			doctor = p
		} else {
			desk = p
		}
	}
	return desk, doctor, nil
}

func (b *bench) close() {
	for _, s := range b.senders {
		s.Close()
	}
	if b.p != nil {
		b.p.Close()
	}
	if b.h != nil {
		b.h.Close(context.Background())
	}
	os.RemoveAll(b.dir)
}

// stored is the ingester's callback: the send-to-stored latency of one
// message.
func (b *bench) stored(h phd.Header) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	t0, ok := b.sent[h.MessageID]
	if !ok {
		return
	}
	delete(b.sent, h.MessageID)
	b.took = append(b.took, now.Sub(t0))
	b.last = now
	b.count++
	if b.count == b.want && b.done != nil {
		close(b.done)
		b.done = nil
	}
}

// phase is one load run's outcome.
type phase struct {
	messages, measurements int
	perSecond              float64 // measurements stored per second
	msgPerSecond           float64
	p50, p99               float64
}

// load sends batches of batch readings from every device for d, either
// back to back (rate 0) or paced at rate messages/s in all, waits until
// the hospital stored every acknowledged message, and times it.
func (b *bench) load(ctx context.Context, batch int, d time.Duration, rate float64) (phase, error) {
	b.mu.Lock()
	b.took, b.count, b.want, b.done = nil, 0, -1, make(chan struct{})
	b.mu.Unlock()
	start := time.Now()
	until := start.Add(d)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ph phase
	var failed error
	for i, fd := range b.fleet {
		wg.Go(func() {
			n, err := b.play(ctx, fd, b.senders[i], uint64(i), batch, until, rate/float64(len(b.fleet)))
			mu.Lock()
			ph.messages += n
			if err != nil && failed == nil {
				failed = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if failed != nil {
		return ph, failed
	}
	if err := b.waitStored(ph.messages); err != nil {
		return ph, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	secs := b.last.Sub(start).Seconds()
	ph.measurements = ph.messages * batch
	ph.perSecond, ph.msgPerSecond = float64(ph.measurements)/secs, float64(ph.messages)/secs
	ph.p50, ph.p99 = gateway.Percentile(b.took, 0.50), gateway.Percentile(b.took, 0.99)
	return ph, nil
}

// play is one device: seal, send (recording the send time), repeat. The
// device keeps its connection to the gateway from one phase to the next,
// as a real one does while it keeps sending.
func (b *bench) play(ctx context.Context, fd gateway.FleetDevice, s *gateway.Sender, seed uint64, batch int, until time.Time, rate float64) (int, error) {
	agent, err := fd.Agent()
	if err != nil {
		return 0, err
	}
	gen := device.NewGenerator(seed+1, 0)
	var every time.Duration
	next, n := time.Now(), 0
	if rate > 0 {
		// Paced devices start spread over one period, as real ones are
		// not synchronized: otherwise every device sends at the same
		// instant and the latency measured is that of a burst.
		every = time.Duration(float64(time.Second) / rate)
		next = next.Add(every * time.Duration(seed) / time.Duration(len(b.fleet)))
		time.Sleep(time.Until(next))
	}
	for time.Now().Before(until) && ctx.Err() == nil {
		now := time.Now()
		msg, hdr, err := agent.Seal(gen.Batch(batch, now.Add(-time.Second), time.Second/time.Duration(batch)), now)
		if err != nil {
			return n, err
		}
		b.mu.Lock()
		b.sent[hdr.MessageID] = now
		b.mu.Unlock()
		if _, err := s.SendReliably(ctx, msg); err != nil {
			return n, fmt.Errorf("device %s: %w", hdr.DeviceID, err)
		}
		n++
		if every > 0 {
			next = next.Add(every)
			time.Sleep(time.Until(next))
		}
	}
	return n, nil
}

func (b *bench) waitStored(want int) error {
	b.mu.Lock()
	b.want = want
	done := b.done
	if b.count >= want && b.done != nil {
		close(b.done)
		b.done = nil
	}
	b.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(2 * time.Minute):
		b.mu.Lock()
		defer b.mu.Unlock()
		return fmt.Errorf("bench: %d of %d acknowledged messages stored after 2 minutes", b.count, want)
	}
}

func (b *bench) run(ctx context.Context, opt BenchOptions, rep *BenchReport) error {
	opt.Log("installation ready: %d patients, %d devices, gateway %s, server %s", len(b.patients), len(b.fleet), b.p.GatewayURL, b.p.ServerURL)
	one, err := b.load(ctx, 1, opt.Phase, 0)
	if err != nil {
		return err
	}
	rep.PerSecondBatch1, rep.P50MSBatch1Max, rep.P99MSBatch1Max = one.perSecond, one.p50, one.p99
	opt.Log("batch 1 at full speed: %.0f measurements/s (p50 %.1f ms, p99 %.1f ms)", one.perSecond, one.p50, one.p99)
	rep.LatencyRateBatch1 = one.msgPerSecond / 2
	half, err := b.load(ctx, 1, opt.Phase, rep.LatencyRateBatch1)
	if err != nil {
		return err
	}
	rep.P50MSBatch1, rep.P99MSBatch1 = half.p50, half.p99
	opt.Log("batch 1 at half speed (%.0f messages/s): p50 %.1f ms, p99 %.1f ms", rep.LatencyRateBatch1, half.p50, half.p99)
	big, err := b.load(ctx, 32, opt.Phase, 0)
	if err != nil {
		return err
	}
	rep.PerSecondBatch32, rep.P50MSBatch32, rep.P99MSBatch32 = big.perSecond, big.p50, big.p99
	opt.Log("batch 32 at full speed: %.0f measurements/s (p50 %.1f ms, p99 %.1f ms)", big.perSecond, big.p50, big.p99)
	rep.Measurements = one.measurements + half.measurements + big.measurements
	if rep.CeilingBatch1 > 0 {
		rep.RatioBatch1 = rep.PerSecondBatch1 / rep.CeilingBatch1
	}
	return b.countStored(ctx, rep)
}

// countStored reads every stored reading back through the door, as the
// patients' physician: nothing acknowledged may be missing, nothing twice.
func (b *bench) countStored(ctx context.Context, rep *BenchReport) error {
	req := records.Request{Who: b.doctor, Purpose: "TREAT"}
	for _, id := range b.patients {
		recs, err := b.h.Door.Records(ctx, req, id, records.Filter{Class: records.ClassObservation})
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Code != ingest.ProvenanceCode {
				rep.Stored++
			}
		}
	}
	rep.Duplicates = max(0, rep.Stored-rep.Measurements)
	rep.Lost = max(0, rep.Measurements-rep.Stored)
	return nil
}
