package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
)

// FleetDevice is one simulated device: its credentials and its sequence
// counter (in the device's directory, so numbers survive restarts).
type FleetDevice struct {
	Dir     string
	Creds   *devices.Credentials
	Counter *device.Counter
}

// LoadFleet loads every device directory under dir (each made by
// `medsec device enroll --out`), in name order.
func LoadFleet(dir string) ([]FleetDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	var fleet []FleetDevice
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d, err := LoadDevice(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		fleet = append(fleet, d)
	}
	return fleet, nil
}

// LoadDevice loads one device directory.
func LoadDevice(dir string) (FleetDevice, error) {
	creds, err := devices.LoadCredentials(dir)
	if err != nil {
		return FleetDevice{}, fmt.Errorf("device %s: %w", dir, err)
	}
	if creds.HospitalKey == nil {
		return FleetDevice{}, fmt.Errorf("device %s: no hospital key (is it a gateway's directory?)", dir)
	}
	ctr, err := device.OpenCounter(filepath.Join(dir, "seq"), 0)
	if err != nil {
		return FleetDevice{}, err
	}
	return FleetDevice{Dir: dir, Creds: creds, Counter: ctr}, nil
}

// Agent is the device's protocol agent.
func (d FleetDevice) Agent() (*device.Agent, error) {
	id, err := d.Creds.Identity()
	if err != nil {
		return nil, err
	}
	return device.NewAgent(device.AgentConfig{DeviceID: id.Serial, Patient: id.Patient, Key: d.Creds.Key,
		Hospital: d.Creds.HospitalKey, Counter: d.Counter})
}

// SimulateOptions says what to play.
type SimulateOptions struct {
	Fleet   []FleetDevice
	Gateway string        // https://host:port
	Rate    float64       // messages per second per device
	For     time.Duration // how long
	// Batch is the number of readings per message (default 4).
	Batch int
	// OutOfRange is the chance a reading lies outside physiological
	// limits (exercises flagging).
	OutOfRange float64
	// Sent, when set, is called for every acknowledged message.
	Sent func(h phd.Header, ack Ack, took time.Duration)
	// Grace is how long past For a message already started is still
	// resent before it counts as an error (default 30 s).
	Grace time.Duration
}

// SimulateReport counts what the fleet did.
type SimulateReport struct {
	Devices      int                `json:"devices"`
	Sent         int                `json:"sent"`
	Acknowledged int                `json:"acknowledged"`
	Duplicates   int                `json:"duplicates"`
	Measurements int                `json:"measurements"`
	Refused      map[phd.Reason]int `json:"refused,omitempty"`
	Errors       int                `json:"errors"`
	P50MS        float64            `json:"ack_p50_ms"`
	P99MS        float64            `json:"ack_p99_ms"`
	Seconds      float64            `json:"seconds"`
}

// Simulate plays realistic readings from every device of the fleet at the
// given rate for the given time, each device on its own connection,
// resending whatever was not acknowledged.
func Simulate(ctx context.Context, opt SimulateOptions) (SimulateReport, error) {
	if len(opt.Fleet) == 0 || opt.Rate <= 0 || opt.For <= 0 {
		return SimulateReport{}, errors.New("simulate: a fleet, a positive rate and a duration are needed")
	}
	if opt.Batch <= 0 {
		opt.Batch = 4
	}
	if opt.Grace <= 0 {
		opt.Grace = 30 * time.Second
	}
	// A started message may outlive the play but not the grace, nor the
	// caller's own end (an interrupt).
	finish, stop := context.WithTimeout(ctx, opt.For+opt.Grace)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, opt.For)
	defer cancel()
	start := time.Now()
	tally := &tally{rep: SimulateReport{Devices: len(opt.Fleet), Refused: map[phd.Reason]int{}}}
	var wg sync.WaitGroup
	for i, d := range opt.Fleet {
		agent, err := d.Agent()
		if err != nil {
			return SimulateReport{}, err
		}
		wg.Go(func() { playDevice(ctx, finish, opt, agent, NewSender(opt.Gateway, d.Creds), uint64(i)+1, tally) })
	}
	wg.Wait()
	return tally.report(time.Since(start)), nil
}

// playDevice sends one device's readings until ctx ends; a message
// started before then is resent until finish ends.
func playDevice(ctx, finish context.Context, opt SimulateOptions, agent *device.Agent, s *Sender, seed uint64, t *tally) {
	defer s.Close()
	gen := device.NewGenerator(seed, opt.OutOfRange)
	r := rand.New(rand.NewPCG(seed, 0x73696d))
	every := time.Duration(float64(time.Second) / opt.Rate)
	sleep(ctx, time.Duration(r.Int64N(int64(every)+1))) // spread the fleet's first sends
	for ctx.Err() == nil {
		next := time.Now().Add(every)
		now := time.Now()
		msg, hdr, err := agent.Seal(gen.Batch(opt.Batch, now.Add(-time.Second), time.Second), now)
		if err != nil {
			t.fail()
			return
		}
		// Finish a message once started, even past the deadline: a device
		// does not drop a reading it has numbered.
		ack, err := s.SendReliably(finish, msg)
		t.record(hdr, ack, err, time.Since(now), opt)
		sleep(ctx, time.Until(next))
	}
}

type tally struct {
	mu   sync.Mutex
	rep  SimulateReport
	took []time.Duration
}

func (t *tally) record(h phd.Header, ack Ack, err error, took time.Duration, opt SimulateOptions) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.Sent++
	var ref *Refused
	switch {
	case errors.As(err, &ref):
		t.rep.Refused[ref.Reason]++
	case err != nil:
		t.rep.Errors++
	default:
		t.rep.Acknowledged++
		t.rep.Measurements += opt.Batch
		if ack.Status == AckDuplicate {
			t.rep.Duplicates++
		}
		t.took = append(t.took, took)
		if opt.Sent != nil {
			opt.Sent(h, ack, took)
		}
	}
}

func (t *tally) fail() {
	t.mu.Lock()
	t.rep.Errors++
	t.mu.Unlock()
}

func (t *tally) report(took time.Duration) SimulateReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := t.rep
	rep.Seconds = took.Seconds()
	rep.P50MS, rep.P99MS = Percentile(t.took, 0.50), Percentile(t.took, 0.99)
	return rep
}

// Percentile returns the p-quantile of ds in milliseconds (0 for none).
func Percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := min(len(s)-1, int(p*float64(len(s))))
	return float64(s[i].Microseconds()) / 1000
}
