package access

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// hospital is an in-memory population the benchmark draws requests from, as
// the door would after reading staff and patient rows.
type hospital struct {
	staff    []Staff
	patients []Patient
	grants   map[string][]Grant
}

func newHospital(nStaff, nPatients int, rng *rand.Rand) *hospital {
	h := &hospital{grants: map[string][]Grant{}}
	now := benchNow
	for i := range nStaff {
		role := roles[rng.IntN(len(roles))]
		if rng.IntN(2) == 0 { // most staff are clinicians
			role = []Role{Physician, Nurse}[rng.IntN(2)]
		}
		s := Staff{ID: fmt.Sprintf("staff-%05d", i), Role: role, Department: fmt.Sprintf("dept-%02d", rng.IntN(20)), Position: "staff", MFA: rng.IntN(4) != 0}
		if role == Nurse {
			s.Wards = []string{fmt.Sprintf("ward-%02d", rng.IntN(40))}
		}
		if role == ITAdmin || role == ExternalMaintainer {
			h.grants[s.ID] = []Grant{{ID: "g-" + s.ID, Scopes: []string{ScopePatientData}, Systems: []string{SystemEMR}, From: now.Add(-time.Hour), Until: now.Add(time.Hour)}}
		}
		h.staff = append(h.staff, s)
	}
	for i := range nPatients {
		p := Patient{
			ID: fmt.Sprintf("patient-%06d", i), Department: fmt.Sprintf("dept-%02d", rng.IntN(20)),
			Ward: fmt.Sprintf("ward-%02d", rng.IntN(40)), Attending: h.staff[rng.IntN(nStaff)].ID,
			ActiveEncounter: rng.IntN(3) != 0,
			Consents: []Consent{
				{Purpose: Payment, Permit: true, From: now.Add(-24 * time.Hour)},
				{Purpose: Research, Permit: rng.IntN(2) == 0, From: now.Add(-24 * time.Hour)},
			},
		}
		for range 3 {
			p.CareTeam = append(p.CareTeam, h.staff[rng.IntN(nStaff)].ID)
		}
		if rng.IntN(10) == 0 {
			p.Labels = []Label{labels[rng.IntN(len(labels))]}
		}
		h.patients = append(h.patients, p)
	}
	return h
}

var benchNow = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// request builds one request the way the door does: copy the rows, pick
// what is asked.
func (h *hospital) request(rng *rand.Rand) Request {
	s := h.staff[rng.IntN(len(h.staff))]
	r := Request{
		Staff: s, Patient: h.patients[rng.IntN(len(h.patients))],
		Action: actions[rng.IntN(len(actions))], DataClass: dataClasses[rng.IntN(len(dataClasses))],
		Purpose: purposes[rng.IntN(len(purposes))].Code, Grants: h.grants[s.ID], Now: benchNow,
	}
	if rng.IntN(20) == 0 {
		r.Purpose = EmergencyTreatment
		r.BreakGlass = BreakGlass{Reason: "cardiac arrest", Started: benchNow.Add(-time.Minute), Expires: benchNow.Add(time.Hour)}
	}
	return r
}

// BenchmarkDecide measures one decision with the shipped policies against a
// population of 10,000 staff and 100,000 patients, building the request per
// call, and reports the median and 99th percentile latency.
func BenchmarkDecide(b *testing.B) {
	e, err := LoadShipped()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHospital(10_000, 100_000, rng)
	lat := make([]time.Duration, 0, b.N)
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		d := e.Decide(h.request(rng))
		lat = append(lat, time.Since(start))
		if d.Allow {
			allowed++
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(percentile(lat, 99).Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(100*float64(allowed)/float64(len(lat)), "%allowed")
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}
