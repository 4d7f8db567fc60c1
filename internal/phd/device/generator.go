package device

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/medsec/medsec/internal/phd"
)

// Baseline is one simulated patient's usual values; readings scatter
// around it with a daily rhythm.
type Baseline struct {
	Systolic, Diastolic float64 // mmHg
	HeartRate           float64 // /min
	Glucose             float64 // mg/dL, fasting-ish
	Weight              float64 // kg
	SpO2                float64 // %
	Temperature         float64 // °C
	Sleep               float64 // h per night
}

// NewBaseline draws a plausible adult from seed: the same seed gives the
// same patient, so a simulated patient keeps their baseline across runs.
func NewBaseline(seed uint64) Baseline {
	r := rand.New(rand.NewPCG(seed, 0x62617365)) // "base"
	sys := clamp(normal(r, 124, 14), 96, 172)
	return Baseline{
		Systolic:    sys,
		Diastolic:   clamp(0.6*sys+normal(r, 5, 6), 58, 108),
		HeartRate:   clamp(normal(r, 72, 9), 52, 98),
		Glucose:     clamp(normal(r, 108, 22), 78, 190),
		Weight:      clamp(normal(r, 68, 13), 42, 130),
		SpO2:        clamp(normal(r, 97, 1.1), 93, 99.5),
		Temperature: clamp(normal(r, 36.6, 0.2), 36.1, 37.1),
		Sleep:       clamp(normal(r, 6.9, 0.8), 4.5, 9),
	}
}

// Generator plays one patient's readings.
type Generator struct {
	base Baseline
	rng  *rand.Rand
	// OutOfRange is the chance a reading lies outside physiological limits
	// (a slipped cuff, a cold finger, an emergency) so the flagging path is
	// exercised; 0 for none.
	OutOfRange float64
}

// NewGenerator returns a generator for the patient of seed.
func NewGenerator(seed uint64, outOfRange float64) *Generator {
	return &Generator{base: NewBaseline(seed), rng: rand.New(rand.NewPCG(seed, 0x72656164)), OutOfRange: outOfRange}
}

// Baseline is the patient's baseline.
func (g *Generator) Baseline() Baseline { return g.base }

// Cycle is the order Batch walks through the measurement kinds.
var Cycle = []phd.Code{
	phd.CodeBloodPressure, phd.CodePulseRate, phd.CodeGlucoseCapillary, phd.CodeBodyWeight,
	phd.CodeSpO2, phd.CodeOximetryPulseRate, phd.CodeBodyTemperature, phd.CodeSleepDuration, phd.CodeHeartRate,
}

// Batch returns n readings measured every step, the last one at end,
// walking through Cycle.
func (g *Generator) Batch(n int, end time.Time, step time.Duration) []phd.Measurement {
	out := make([]phd.Measurement, n)
	for i := range out {
		at := end.Add(-time.Duration(n-1-i) * step)
		out[i] = g.Measure(Cycle[i%len(Cycle)], at)
	}
	return out
}

// Measure returns one reading of the given kind at time at. Codes outside
// Cycle yield a pulse rate reading.
func (g *Generator) Measure(code phd.Code, at time.Time) phd.Measurement {
	at = at.Truncate(time.Millisecond)
	if code == phd.CodeBloodPressure {
		return g.bloodPressure(at)
	}
	if !slices.Contains(Cycle, code) {
		code = phd.CodePulseRate
	}
	unit, value := g.simple(code, at)
	if g.rng.Float64() < g.OutOfRange {
		value = g.outside(code, unit)
	}
	return phd.Measurement{Code: code, Unit: unit, Value: value, Time: at}
}

func (g *Generator) bloodPressure(at time.Time) phd.Measurement {
	d := daily(at)
	sys := math.Round(g.base.Systolic + 8*d + normal(g.rng, 0, 6))
	dia := math.Round(g.base.Diastolic + 5*d + normal(g.rng, 0, 4))
	if g.rng.Float64() < g.OutOfRange {
		sys = g.outside(phd.CodeSystolic, "mm[Hg]")
	}
	mean := math.Round(dia + (sys-dia)/3)
	return phd.Measurement{Code: phd.CodeBloodPressure, Unit: "mm[Hg]", Time: at, Components: []phd.Component{
		{Code: phd.CodeSystolic, Value: sys}, {Code: phd.CodeDiastolic, Value: dia}, {Code: phd.CodeMeanPressure, Value: mean},
	}}
}

// simple returns the unit and an in-range value at the device's resolution.
func (g *Generator) simple(code phd.Code, at time.Time) (string, float64) {
	d, r := daily(at), g.rng
	switch code {
	case phd.CodeGlucoseCapillary:
		return "mg/dL", math.Round(g.base.Glucose + 25*math.Max(0, d) + normal(r, 0, 12))
	case phd.CodeBodyWeight:
		return "kg", round1(g.base.Weight + normal(r, 0, 0.4))
	case phd.CodeSpO2:
		return "%", math.Min(100, math.Round(g.base.SpO2+normal(r, 0, 0.8)))
	case phd.CodeBodyTemperature:
		return "Cel", round1(g.base.Temperature + 0.3*d + normal(r, 0, 0.15))
	case phd.CodeSleepDuration:
		return "h", math.Max(0, round1(g.base.Sleep+normal(r, 0, 0.9)))
	}
	return "/min", math.Round(g.base.HeartRate + 6*d + normal(r, 0, 5))
}

// outside returns a value beyond the kind's physiological limits.
func (g *Generator) outside(code phd.Code, unit string) float64 {
	k, _ := phd.LookupKind(code)
	u, _ := k.Unit(unit)
	lim := u.Limits
	if lim.Low > 0 && g.rng.IntN(2) == 0 {
		return round1(lim.Low * (0.6 + 0.3*g.rng.Float64()))
	}
	return round1(lim.High * (1.05 + 0.2*g.rng.Float64()))
}

// daily is a day rhythm in [-1, 1] peaking mid-afternoon local to the
// reading's timestamp.
func daily(at time.Time) float64 {
	h := float64(at.Hour()) + float64(at.Minute())/60
	return math.Sin((h - 9) / 24 * 2 * math.Pi)
}

func normal(r *rand.Rand, mean, sd float64) float64 { return mean + sd*r.NormFloat64() }

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }
