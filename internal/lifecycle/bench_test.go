package lifecycle_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/benchref"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/records"
)

// BenchmarkScale builds one installation on SQLite: 100,000 patients with
// 10 records each (1,000,000 records: observations, notes and medication
// orders spread over twelve years), written through the door as the
// hospital would. Then it traces one patient among them, and runs
// retention once over all of them. Generation takes long; run it alone:
//
//	MEDSEC_BENCH_DIR=/dev/shm go test ./internal/lifecycle -run '^$' -bench Scale -benchtime 1x -timeout 120m
//
// MEDSEC_BENCH_DIR puts the data directory on a memory file system so that
// the 400,000 commits of the generation do not each wait for the disk (the
// retention run itself commits under a thousand times). MEDSEC_BENCH_PATIENTS
// lowers the patient count for a quick look.

func scalePatients() int {
	if n, err := strconv.Atoi(os.Getenv("MEDSEC_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

func BenchmarkScale(b *testing.B) {
	parent := b.TempDir()
	if d := os.Getenv("MEDSEC_BENCH_DIR"); d != "" {
		var err error
		if parent, err = os.MkdirTemp(d, "medsec-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(parent) })
	}
	limits := benchref.Measure(300 * time.Millisecond)
	s := lifecycletest.NewIn(b, parent, lifecycletest.SQLite, nil)
	ids, recs := generate(b, s, scalePatients())
	b.Run("trace", func(b *testing.B) { benchTrace(b, s, ids, limits) })
	b.Run("retention", func(b *testing.B) { benchRetention(b, s, recs, limits) })
}

func generate(b *testing.B, s *lifecycletest.Stack, n int) ([]string, int) {
	start := time.Now()
	ids := make([]string, n)
	recs := 0
	for i := range n {
		p := s.Register(b, records.Patient{Name: fmt.Sprintf("환자%06d", i), MRN: fmt.Sprintf("MRN-%07d", i)})
		ids[i] = p.ID
		recs += addHistory(b, s, p.ID, i)
		if i > 0 && i%10_000 == 0 {
			b.Logf("%d patients, %d records in %s", i, recs, time.Since(start).Round(time.Second))
		}
	}
	b.Logf("generated %d patients with %d records in %s", n, recs, time.Since(start).Round(time.Second))
	return ids, recs
}

// addHistory writes a patient's ten records: six observations, two notes,
// two medication orders, at ages spread so that about half of them have
// expired under the kr schedule and one patient in ten goes whole.
func addHistory(b *testing.B, s *lifecycletest.Stack, id string, i int) int {
	last := lifecycletest.Start.AddDate(0, -(i % 144), 0) // last seen up to 12 years ago
	if i%10 == 9 {
		last = lifecycletest.Start.AddDate(-11, 0, 0) // a former patient: everything expired
	}
	add := func(class string, n int, step time.Duration) {
		recs := make([]records.Record, n)
		for k := range recs {
			at := last.Add(-time.Duration(k) * step)
			recs[k] = records.Record{Class: class, Code: "8867-4", Effective: at, Source: "staff:dr.kim", Payload: lifecycletest.Observation(at, 60+k)}
		}
		if _, err := s.Door.AddRecords(context.Background(), records.Request{Who: s.Doctor, Purpose: "TREAT"}, id, recs); err != nil {
			b.Fatal(err)
		}
	}
	add(records.ClassObservation, 6, 200*24*time.Hour)
	add(records.ClassNote, 2, 400*24*time.Hour)
	add(records.ClassMedication, 2, 300*24*time.Hour)
	return 10
}

func reportLimits(b *testing.B, l benchref.Limits) {
	b.ReportMetric(l.SHA256MBps, "sha256-MB/s")
	b.ReportMetric(l.Ed25519VerifyPerS, "ed25519-verify/s")
}

// cpuSeconds is the process's user and system CPU time: a figure that,
// unlike wall time, does not grow when other work shares the machine.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// benchTrace draws the data map of one patient among all of them (the
// door's decided, audited count by class, holds, the ledger), 200 times
// per op, and reports the median and 99th-percentile latency.
func benchTrace(b *testing.B, s *lifecycletest.Stack, ids []string, l benchref.Limits) {
	req := records.Request{Who: s.Officer, Purpose: lifecycle.PurposeOperations}
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		for k := range 200 {
			start := time.Now()
			if _, err := s.Engine.Trace(ctx, req, ids[((i*200+k)*7919)%len(ids)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(ids)), "patients")
	reportLimits(b, l)
}

// benchRetention runs retention once over all the records: the expiry
// queries, the crypto-shredding of former patients, the sealed-row
// deletion of everyone's expired records, the certificate.
func benchRetention(b *testing.B, s *lifecycletest.Stack, recs int, l benchref.Limits) {
	ctx := context.Background()
	cpu := cpuSeconds()
	for b.Loop() {
		res, err := s.Engine.Run(ctx, lifecycle.RunOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Certificate.Records), "destroyed")
		b.ReportMetric(float64(res.Certificate.Patients), "patients-touched")
		s.Clock.Advance(time.Hour)
	}
	b.ReportMetric((cpuSeconds()-cpu)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(recs), "records")
	reportLimits(b, l)
}
