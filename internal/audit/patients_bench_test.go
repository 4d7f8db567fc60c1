package audit

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAccessHistory reads one patient's access history (the newest
// 100 of their events, as the portal shows) among 100,000 events of
// benchPatients patients: through the index by patient, and by the full
// scan that read it before.
func BenchmarkAccessHistory(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	const n = 100000
	for i := 0; i < n; i += 2000 {
		fillBatch(b, f, testEvent(1), 2000)
	}
	if _, err := IndexPatients(ctx, f.db, "main"); err != nil {
		b.Fatal(err)
	}
	q := PatientQuery{Pseudonym: "P-0042", Limit: 100}
	b.Run("index", func(b *testing.B) {
		cpu := startCPU()
		for range b.N {
			got := 0
			if err := ScanPatient(ctx, f.db, "main", q, func(Event) error { got++; return nil }); err != nil || got == 0 {
				b.Fatalf("history: %d events, %v", got, err)
			}
		}
		b.ReportMetric(float64(processCPU()-time.Duration(cpu))/float64(b.N), "cpu-ns/query")
	})
	b.Run("fullscan", func(b *testing.B) {
		cpu := startCPU()
		for range b.N {
			got := 0
			err := Scan(ctx, f.db, "main", 0, 0, func(e Event) error {
				if q.keeps(e) {
					got++
				}
				return nil
			})
			if err != nil || got == 0 {
				b.Fatalf("history: %d events, %v", got, err)
			}
		}
		b.ReportMetric(float64(processCPU()-time.Duration(cpu))/float64(b.N), "cpu-ns/query")
	})
}

// BenchmarkIndexPatients measures the catch-up alone (what the background
// indexer spends per event, off the append path): 10,000 events, the
// checkpoint interval, indexed in one run.
func BenchmarkIndexPatients(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	if err := f.log.Close(ctx); err != nil { // no background indexer: the benchmark runs the catch-up
		b.Fatal(err)
	}
	var cpuUsed cpuClock
	for range b.N {
		b.StopTimer()
		for range 5 {
			fillBatch(b, f, testEvent(1), 2000) // the writer alone: the log is closed
		}
		b.StartTimer()
		c := startCPU()
		if n, err := IndexPatients(ctx, f.db, "main"); err != nil || n != 10000 {
			b.Fatalf("indexed %d events: %v", n, err)
		}
		cpuUsed += startCPU() - c
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuUsed)/float64(10000*b.N), "cpu-ns/event")
}
