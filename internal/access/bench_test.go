package access

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hospital is an in-memory population the benchmark draws requests from,
// as the door would after reading staff and patient rows.
type hospital struct {
	staff        []Staff
	patients     []Patient
	nursesByWard map[string][]int
	staffIndex   map[string]int
	grants       map[string][]Grant
}

const (
	benchDepartments = 20
	benchWards       = 40
)

var benchNow = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func newHospital(nStaff, nPatients int, rng *rand.Rand) *hospital {
	h := &hospital{nursesByWard: map[string][]int{}, staffIndex: map[string]int{}, grants: map[string][]Grant{}}
	var physicians, clinicians []string
	for i := range nStaff {
		s := newBenchStaff(i, rng)
		switch s.Role {
		case Physician:
			physicians = append(physicians, s.ID)
			clinicians = append(clinicians, s.ID)
		case Nurse:
			h.nursesByWard[s.Wards[0]] = append(h.nursesByWard[s.Wards[0]], i)
			clinicians = append(clinicians, s.ID)
		case ITAdmin, ExternalMaintainer:
			h.grants[s.ID] = []Grant{{ID: "g-" + s.ID, Scopes: []string{ScopePatientData}, Systems: []string{SystemEMR},
				From: benchNow.Add(-time.Hour), Until: benchNow.Add(time.Hour)}}
		}
		h.staffIndex[s.ID] = i
		h.staff = append(h.staff, s)
	}
	for i := range nPatients {
		h.patients = append(h.patients, newBenchPatient(i, physicians, clinicians, rng))
	}
	return h
}

func newBenchStaff(i int, rng *rand.Rand) Staff {
	role := roles[rng.IntN(len(roles))]
	if rng.IntN(10) < 7 { // most staff are clinicians
		role = []Role{Physician, Nurse, Nurse}[rng.IntN(3)]
	}
	s := Staff{ID: fmt.Sprintf("staff-%05d", i), Role: role, Department: fmt.Sprintf("dept-%02d", rng.IntN(benchDepartments)),
		Position: "staff", MFA: rng.IntN(4) != 0}
	if role == Nurse {
		s.Wards = []string{fmt.Sprintf("ward-%02d", rng.IntN(benchWards))}
	}
	return s
}

func newBenchPatient(i int, physicians, clinicians []string, rng *rand.Rand) Patient {
	p := Patient{
		ID: fmt.Sprintf("patient-%06d", i), Department: fmt.Sprintf("dept-%02d", rng.IntN(benchDepartments)),
		Ward: fmt.Sprintf("ward-%02d", rng.IntN(benchWards)), Attending: physicians[rng.IntN(len(physicians))],
		ActiveEncounter: rng.IntN(3) != 0,
		Consents: []Consent{
			{Purpose: Payment, Permit: true, From: benchNow.Add(-24 * time.Hour)},
			{Purpose: Research, Permit: rng.IntN(2) == 0, From: benchNow.Add(-24 * time.Hour)},
		},
	}
	for range 3 {
		p.CareTeam = append(p.CareTeam, clinicians[rng.IntN(len(clinicians))])
	}
	if rng.IntN(10) == 0 {
		p.Labels = []Label{labels[rng.IntN(len(labels))]}
	}
	return p
}

// request builds one request the way the door does: copy the rows, pick
// what is asked. Most requests are care (the attending physician, a nurse
// on the ward); the rest are anything at all, mostly refused.
func (h *hospital) request(rng *rand.Rand) Request {
	p := h.patients[rng.IntN(len(h.patients))]
	r := Request{
		Staff: h.staff[rng.IntN(len(h.staff))], Patient: p,
		Action: actions[rng.IntN(len(actions))], DataClass: dataClasses[rng.IntN(len(dataClasses))],
		Purpose: purposes[rng.IntN(len(purposes))].Code, Now: benchNow,
	}
	switch k := rng.IntN(20); {
	case k < 10: // the attending physician at work
		r.Staff = h.staff[h.staffIndex[p.Attending]]
		r.Action, r.DataClass, r.Purpose = []Action{Read, Search, Write}[rng.IntN(3)], clinicalClass(rng), Treatment
	case k < 14: // a nurse of the patient's ward
		if ns := h.nursesByWard[p.Ward]; len(ns) > 0 {
			r.Staff = h.staff[ns[rng.IntN(len(ns))]]
			r.Action, r.DataClass, r.Purpose = Read, clinicalClass(rng), Treatment
		}
	case k < 15: // break-glass
		r.Purpose = EmergencyTreatment
		r.BreakGlass = BreakGlass{Reason: "cardiac arrest", Started: benchNow.Add(-time.Minute), Expires: benchNow.Add(time.Hour)}
	}
	r.Grants = h.grants[r.Staff.ID]
	return r
}

func clinicalClass(rng *rand.Rand) DataClass {
	return []DataClass{Observation, Encounter, Order, Medication, Note, Imaging}[rng.IntN(6)]
}

// BenchmarkDecide measures one decision with the shipped policies against a
// population of 10,000 staff and 100,000 patients, building the request per
// call (the door copies the rows into a Request), and reports the median
// and 99th percentile latency: on the wall clock, and on the CPU of the
// thread that decided (which leaves out time the machine gave to other
// processes, but not garbage collection this goroutine had to help with).
func BenchmarkDecide(b *testing.B) {
	e, err := LoadShipped()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHospital(10_000, 100_000, rng)
	runtime.GC()
	// The machine's raw speed right now, to read the figures against
	// (DESIGN.md: SHA-256 about 1.4 GB/s on this machine when idle).
	raw := sha256Throughput()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	wall := make([]time.Duration, 0, b.N)
	cpu := make([]time.Duration, 0, b.N)
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c0, w0 := threadCPU(), time.Now()
		d := e.Decide(h.request(rng))
		w1, c1 := time.Now(), threadCPU()
		wall, cpu = append(wall, w1.Sub(w0)), append(cpu, c1-c0)
		if d.Allow {
			allowed++
		}
	}
	b.StopTimer()
	reportPercentiles(b, "wall", wall)
	reportPercentiles(b, "cpu", cpu)
	b.ReportMetric(100*float64(allowed)/float64(len(wall)), "%allowed")
	b.ReportMetric(raw, "sha256-MB/s")
}

// sha256Throughput hashes 32 MiB and returns the rate in MB/s.
func sha256Throughput() float64 {
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range 32 {
		sha256.Sum256(buf)
	}
	return 32 * float64(len(buf)) / 1e6 / time.Since(start).Seconds()
}

// threadCPU is the CPU time the current OS thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func reportPercentiles(b *testing.B, name string, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(micros(percentile(lat, 50)), name+"-p50-µs")
	b.ReportMetric(micros(percentile(lat, 99)), name+"-p99-µs")
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}
