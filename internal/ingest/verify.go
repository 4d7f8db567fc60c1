package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/records"
)

// verified is a message that passed every check a gateway can make, made
// again here: nothing a gateway says is taken on trust.
type verified struct {
	index  int
	raw    []byte
	signed *phd.Signed
	header phd.Header
	device devices.Device
}

// verifyAll checks msgs on all cores; refused ones get their Result (and
// an audit event) here, the rest are returned in bundle order.
func (in *Ingester) verifyAll(ctx context.Context, gateway string, msgs [][]byte, results []Result) []*verified {
	out := make([]*verified, len(msgs))
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(msgs)) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = in.check(ctx, msgs[i])
			}
		})
	}
	for i := range msgs {
		next <- i
	}
	close(next)
	wg.Wait()
	var ok []*verified
	for i, v := range out {
		if errs[i] != nil {
			results[i] = in.refuse(ctx, gateway, i, v, errs[i])
			continue
		}
		v.index = i
		ok = append(ok, v)
	}
	return ok
}

// check runs the checks of one message: parse within limits, the device's
// registry entry (active, a device, its certificate valid when the message
// was sent), the header's binding to that device and patient, the
// signature, and the send time. On error the partial result says what was
// read, for the audit event.
func (in *Ingester) check(ctx context.Context, raw []byte) (*verified, error) {
	s, err := phd.ParseSigned(raw, in.cfg.Limits)
	if err != nil {
		return &verified{}, err
	}
	v := &verified{raw: raw, signed: s, header: s.Header()}
	d, err := in.cache.device(ctx, in.cfg.Authority, v.header.DeviceID)
	if err != nil {
		return v, err
	}
	if err := d.Check(); err != nil {
		return v, err
	}
	if err := v.header.CheckBinding(d.Serial, d.Patient); err != nil {
		return v, err
	}
	if v.header.Time.After(d.NotAfter) {
		return v, &phd.Error{Reason: devices.ReasonCertificateExpired, Detail: fmt.Sprintf("device %s sent the message after its certificate expired", d.Serial)}
	}
	if err := s.Verify(d.PublicKey); err != nil {
		return v, err
	}
	v.device = d
	return v, in.cfg.Limits.CheckSent(v.header.Time, in.now())
}

// refuse makes the Result of a refused message, counts it and audits it.
// The patient is named only when the signature verified (an unverified
// header is a claim, not a fact for the log).
func (in *Ingester) refuse(ctx context.Context, gateway string, i int, v *verified, err error) Result {
	r := Result{Index: i, Status: Rejected, Reason: phd.ReasonOf(err), Detail: detailOf(err)}
	if v != nil && v.signed != nil {
		r.MessageID = v.header.MessageID.String()
	}
	if r.Reason == phd.ReasonInternal {
		in.cfg.Logger.Error("check a device message", "err", err)
		r.Status = Retry
		return r
	}
	in.auditRefusal(ctx, gateway, v, r)
	return r
}

func (in *Ingester) auditRefusal(ctx context.Context, gateway string, v *verified, r Result) {
	ev := audit.Event{Time: in.now(), Actor: "gateway:" + gateway, Action: "phd.message.refuse", Outcome: audit.Denied,
		Source: "message:" + r.MessageID, Reason: string(r.Reason) + ": " + r.Detail}
	if v != nil && v.signed != nil {
		ev.Resource = "device/" + v.header.DeviceID
		if v.signed.Verified() {
			ev.Patient = v.header.Patient
		}
	}
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		in.cfg.Logger.Error("audit a refused device message", "err", err)
	}
}

func detailOf(err error) string {
	var pe *phd.Error
	if errors.As(err, &pe) && pe.Detail != "" {
		return pe.Detail
	}
	if phd.ReasonOf(err) == phd.ReasonInternal {
		return "internal error; the message will be accepted when sent again"
	}
	return err.Error()
}

// lookups caches registry entries for a second (so a revocation takes
// effect within a second here too) and patient ids by pseudonym (which
// never change).
type lookups struct {
	mu       sync.Mutex
	devices  map[string]cachedDevice
	patients map[string]string
}

type cachedDevice struct {
	d       devices.Device
	fetched time.Time
}

const (
	deviceTTL  = time.Second
	cacheLimit = 100000
)

func newLookups() *lookups {
	return &lookups{devices: map[string]cachedDevice{}, patients: map[string]string{}}
}

func (l *lookups) device(ctx context.Context, a *devices.Authority, serial string) (devices.Device, error) {
	l.mu.Lock()
	c, ok := l.devices[serial]
	l.mu.Unlock()
	if ok && time.Since(c.fetched) < deviceTTL {
		return c.d, nil
	}
	d, err := a.Device(ctx, serial)
	if errors.Is(err, devices.ErrUnknownDevice) {
		return d, &phd.Error{Reason: devices.ReasonDeviceUnknown, Detail: "device " + serial + " is not enrolled"}
	}
	if err != nil {
		return d, err
	}
	if d.Kind != devices.KindDevice {
		return d, &phd.Error{Reason: devices.ReasonDeviceUnknown, Detail: serial + " is not a device"}
	}
	l.mu.Lock()
	if len(l.devices) >= cacheLimit {
		clear(l.devices)
	}
	l.devices[serial] = cachedDevice{d: d, fetched: time.Now()}
	l.mu.Unlock()
	return d, nil
}

func (l *lookups) patient(ctx context.Context, door *records.Door, pseudonym string) (string, error) {
	l.mu.Lock()
	id, ok := l.patients[pseudonym]
	l.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := door.ResolvePseudonym(ctx, pseudonym)
	if errors.Is(err, records.ErrNotFound) {
		return "", &phd.Error{Reason: ReasonPatientUnknown, Detail: "the device's patient " + pseudonym + " is not registered"}
	}
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	if len(l.patients) >= cacheLimit {
		clear(l.patients)
	}
	l.patients[pseudonym] = id
	l.mu.Unlock()
	return id, nil
}
