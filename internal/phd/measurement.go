package phd

import (
	"fmt"
	"math"
	"time"
)

// Measurement is one reading as a device reports it.
type Measurement struct {
	Code  Code   // what was measured (catalog code)
	Unit  string // UCUM code of Value (and of the components)
	Value float64
	// Components carry a compound measurement (blood pressure); Value is
	// then zero and unused.
	Components []Component
	// Time is when the device measured, by its own clock.
	Time time.Time
}

// Component is one part of a compound measurement.
type Component struct {
	Code  Code
	Value float64
	// Flag is set by Assess; devices leave it zero and the wire ignores it.
	Flag Flag
}

// Flag marks a value outside physiological limits.
type Flag uint8

// Flags. A compound reading carries the union of its components' flags.
const (
	FlagBelowLimits Flag = 1 << iota
	FlagAboveLimits
)

// Reading is a measurement the server accepted, with where it came from.
// It is what storage keeps (EncodeReading) and FHIR renders (Observation).
type Reading struct {
	Measurement
	DeviceID  string
	Patient   string // pseudonymous patient reference the device is bound to
	MessageID MessageID
	Index     int  // position in the batch, so ID is stable
	Flag      Flag // physiological-limit flags of Value or of the components
}

// String names a reading for logs without its value (PHI stays out).
func (r Reading) String() string {
	return fmt.Sprintf("reading %s code %d", r.ID(), uint32(r.Code))
}

// ID is the reading's stable identity: the same message delivered twice
// yields the same IDs, which makes storing idempotent.
func (r Reading) ID() string { return fmt.Sprintf("%s-%d", r.MessageID, r.Index) }

// Limits bound what a receiver accepts. The zero value is not useful; start
// from DefaultLimits.
type Limits struct {
	MaxMessageBytes int // whole COSE message
	MaxMeasurements int // per batch
	// FutureSkew is how far ahead of the receiver's clock a timestamp may be.
	FutureSkew time.Duration
	// MaxMessageAge is how old a message's send time may be on arrival.
	MaxMessageAge time.Duration
	// MaxMeasurementAge is how old a measurement may be (devices keep
	// readings while offline and send them later).
	MaxMeasurementAge time.Duration
}

// DefaultLimits suit a home device sending every few minutes: 64 KiB and
// 256 measurements a message, 5 minutes of clock skew, a week in a gateway
// queue, 90 days of offline storage in the device.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageBytes:   64 << 10,
		MaxMeasurements:   256,
		FutureSkew:        5 * time.Minute,
		MaxMessageAge:     7 * 24 * time.Hour,
		MaxMeasurementAge: 90 * 24 * time.Hour,
	}
}

// CheckSent checks a message's send time (Header.Time) against now.
func (l Limits) CheckSent(sent, now time.Time) error {
	return checkTime("message time", sent, now, l.FutureSkew, l.MaxMessageAge)
}

// CheckMeasured checks a measurement time against now.
func (l Limits) CheckMeasured(measured, now time.Time) error {
	return checkTime("measurement time", measured, now, l.FutureSkew, l.MaxMeasurementAge)
}

func checkTime(what string, t, now time.Time, skew, maxAge time.Duration) error {
	if t.After(now.Add(skew)) {
		return refuse(ReasonTimestampFuture, "%s is %s ahead of the receiver's clock (allowed %s); set the device clock",
			what, t.Sub(now).Round(time.Second), skew)
	}
	if now.Sub(t) > maxAge {
		return refuse(ReasonTimestampTooOld, "%s is %s old (allowed %s)", what, now.Sub(t).Round(time.Second), maxAge)
	}
	return nil
}

// CheckMeasurement validates one measurement against the catalog and the
// clock. An error rejects it (unknown-code, unit-mismatch, malformed,
// timestamp-…); a value outside physiological limits is not an error: the
// flags come back and the returned measurement carries component flags.
func CheckMeasurement(m Measurement, now time.Time, lim Limits) (Measurement, Flag, error) {
	kind, ok := LookupKind(m.Code)
	if !ok {
		return m, 0, refuse(ReasonUnknownCode, "measurement code %d (%s) is not in the catalog", uint32(m.Code), m.Code)
	}
	if _, ok := kind.Unit(m.Unit); !ok {
		return m, 0, refuse(ReasonUnitMismatch, "unit %q is not allowed for %s", printable(m.Unit), kind.RefID)
	}
	if err := lim.CheckMeasured(m.Time, now); err != nil {
		return m, 0, err
	}
	if kind.Compound() {
		return checkCompound(kind, m)
	}
	return checkSimple(kind, m)
}

func checkSimple(kind Kind, m Measurement) (Measurement, Flag, error) {
	if len(m.Components) > 0 {
		return m, 0, refuse(ReasonMalformed, "%s is not a compound measurement but carries components", kind.RefID)
	}
	if !finite(m.Value) {
		return m, 0, refuse(ReasonMalformed, "%s value is not a finite number", kind.RefID)
	}
	u, _ := kind.Unit(m.Unit)
	return m, flagFor(u.Limits, m.Value), nil
}

func checkCompound(kind Kind, m Measurement) (Measurement, Flag, error) {
	if m.Value != 0 {
		return m, 0, refuse(ReasonMalformed, "%s is compound: the value belongs in its components", kind.RefID)
	}
	if err := checkComponentSet(kind, m.Components); err != nil {
		return m, 0, err
	}
	out := m
	out.Components = make([]Component, len(m.Components))
	var all Flag
	for i, c := range m.Components {
		f, err := componentFlag(kind, m.Unit, c)
		if err != nil {
			return m, 0, err
		}
		out.Components[i] = Component{Code: c.Code, Value: c.Value, Flag: f}
		all |= f
	}
	return out, all, nil
}

// checkComponentSet requires the kind's required components, allows its
// optional ones, and refuses unknown or repeated ones.
func checkComponentSet(kind Kind, cs []Component) error {
	seen := make(map[Code]bool, len(cs))
	for _, c := range cs {
		if !kind.componentOf(c.Code) {
			return refuse(ReasonUnknownCode, "component code %d is not part of %s", uint32(c.Code), kind.RefID)
		}
		if seen[c.Code] {
			return refuse(ReasonMalformed, "component %d appears twice in %s", uint32(c.Code), kind.RefID)
		}
		seen[c.Code] = true
	}
	for _, req := range kind.Components[:kind.RequiredComponents] {
		if !seen[req] {
			return refuse(ReasonMalformed, "%s lacks required component %d", kind.RefID, uint32(req))
		}
	}
	return nil
}

func componentFlag(parent Kind, unit string, c Component) (Flag, error) {
	ck, _ := LookupKind(c.Code)
	u, ok := ck.Unit(unit)
	if !ok {
		return 0, refuse(ReasonUnitMismatch, "unit %q is not allowed for %s", printable(unit), ck.RefID)
	}
	if !finite(c.Value) {
		return 0, refuse(ReasonMalformed, "%s component %s is not a finite number", parent.RefID, ck.RefID)
	}
	return flagFor(u.Limits, c.Value), nil
}

func flagFor(r Range, v float64) Flag {
	switch {
	case v < r.Low:
		return FlagBelowLimits
	case v > r.High:
		return FlagAboveLimits
	}
	return 0
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// printable shortens and sanitises a string from the wire for an error message.
func printable(s string) string {
	const limit = 32
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if len(out) == limit {
			return string(out) + "…"
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}

// Rejection says why one measurement of a batch was refused.
type Rejection struct {
	Index  int
	Reason Reason
	Detail string
}

// Assessment is what the server does with an opened batch: the readings to
// store (flagged ones included) and the measurements refused.
type Assessment struct {
	Readings []Reading
	Rejected []Rejection
}

// Flagged counts the stored readings outside physiological limits.
func (a Assessment) Flagged() int {
	n := 0
	for _, r := range a.Readings {
		if r.Flag != 0 {
			n++
		}
	}
	return n
}

// Assess validates every measurement of b. A refused measurement does not
// stop the others: one broken reading must not make the device resend, and
// fail on, the whole batch forever.
func Assess(b *Batch, now time.Time, lim Limits) Assessment {
	var a Assessment
	for i, m := range b.Measurements {
		checked, flag, err := CheckMeasurement(m, now, lim)
		if err != nil {
			a.Rejected = append(a.Rejected, rejection(i, err))
			continue
		}
		a.Readings = append(a.Readings, Reading{
			Measurement: checked, DeviceID: b.DeviceID, Patient: b.Patient,
			MessageID: b.MessageID, Index: i, Flag: flag,
		})
	}
	return a
}

func rejection(i int, err error) Rejection {
	r := Rejection{Index: i, Reason: ReasonOf(err), Detail: err.Error()}
	if e, ok := err.(*Error); ok {
		r.Detail = e.Detail
	}
	return r
}
