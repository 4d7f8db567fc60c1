package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/store/storetest"
)

// BenchmarkAppend measures durable audit appends with group commit: many
// goroutines append at once, as the requests of a busy server do.
func BenchmarkAppend(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	evs := benchEvents()
	var g atomic.Int64
	b.SetParallelism(512) // a busy server: many requests waiting on their audit events
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		i := int(g.Add(1))
		for pb.Next() {
			i += 7
			if _, err := f.log.Append(ctx, evs[i%len(evs)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	cpu.report(b, b.N)
}

// BenchmarkVerify measures a full verification of a 200,000-event log.
func BenchmarkVerify(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	const n = 200000
	ev := testEvent(1)
	for i := 0; i < n; i += 2000 {
		fillBatch(b, f, ev, 2000)
	}
	f.log.Checkpoint(ctx)
	b.ResetTimer()
	cpu := startCPU()
	for range b.N {
		v, err := f.vf.Verify(ctx)
		if err != nil || v.Events != n {
			b.Fatalf("verify: %v, %d events", err, v.Events)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	cpu.report(b, n*b.N)
}

// benchPatients is how many patients the benchmarks' events name, so the
// patient index is written at many places as in a hospital.
const benchPatients = 1000

// benchEvents returns testEvent(1) once for each of benchPatients
// patients; the events differ only in the pseudonym, all of one length.
func benchEvents() []Event {
	evs := make([]Event, benchPatients)
	for i := range evs {
		evs[i] = testEvent(1)
		evs[i].Patient = fmt.Sprintf("P-%04d", i)
	}
	return evs
}

// fillBatch commits n events like ev as one group commit, each naming one
// of benchPatients patients at random.
func fillBatch(b *testing.B, f *fixture, ev Event, n int) {
	bodies := make([][]byte, benchPatients)
	for i := range bodies {
		e := ev
		e.Patient = fmt.Sprintf("P-%04d", i)
		bodies[i], _ = encodeBody(&e)
	}
	reqs := make([]*appendReq, n)
	for i := range reqs {
		reqs[i] = &appendReq{body: bodies[rand.IntN(benchPatients)], done: make(chan appendRes, 1)}
	}
	f.log.commit(reqs)
	if res := <-reqs[0].done; res.err != nil {
		b.Fatal(res.err)
	}
}

func newBenchFixture(b *testing.B) *fixture {
	db := storetest.OpenSQLite(b)
	return newFixtureTB(b, db, 10000) // the production default
}

// BenchmarkSHA256 is the machine's raw hashing limit, for the ratio.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		sha256.Sum256(buf)
	}
}

// BenchmarkCommitBatch measures the writer alone: full group commits of
// 2,000 events (the most a commit takes), one transaction and fsync each.
// The log is closed first, so no background work (the patient indexer)
// runs beside it; BenchmarkAppend measures the whole.
func BenchmarkCommitBatch(b *testing.B) {
	f := newBenchFixture(b)
	if err := f.log.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	ev := testEvent(1)
	b.ResetTimer()
	cpu := startCPU()
	for range b.N {
		fillBatch(b, f, ev, 2000)
	}
	b.ReportMetric(float64(b.N*2000)/b.Elapsed().Seconds(), "events/s")
	cpu.report(b, b.N*2000)
}

// cpuClock reads the process's user+system CPU time, so a benchmark can
// report CPU per event: on a machine shared with other work, wall-clock
// rates move with the load while CPU per event mostly does not.
type cpuClock time.Duration

func startCPU() cpuClock { return cpuClock(processCPU()) }

func (c cpuClock) report(b *testing.B, events int) {
	used := processCPU() - time.Duration(c)
	b.ReportMetric(float64(used.Nanoseconds())/float64(events), "cpu-ns/event")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncodeBody measures encoding one event in the appender's
// goroutine: the benchmarks' event, and an access event as the records
// door writes it (flags and the access decision included).
func BenchmarkEncodeBody(b *testing.B) {
	door := testEvent(1)
	door.Flags = []string{"break-glass"}
	door.Decision = json.RawMessage(`{"allow":true,"rule":"treating-physician","flags":["break-glass"],"obligations":["notify-privacy-officer"]}`)
	for _, ev := range []struct {
		name string
		e    Event
	}{{"plain", testEvent(1)}, {"door", door}} {
		b.Run(ev.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU()
			for range b.N {
				e := ev.e
				if _, err := encodeBody(&e); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, b.N)
		})
	}
}
