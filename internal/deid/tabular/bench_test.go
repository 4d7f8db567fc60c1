package tabular

import (
	"context"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAnonymize1M is the performance target: k-anonymity with
// k = 5 over 8 quasi-identifiers and at most 5 % suppressed, on 1,000,000
// synthetic admissions. It only runs when -bench selects it:
//
//	go test -run '^$' -bench Anonymize1M -benchtime 1x ./internal/deid/tabular
func BenchmarkAnonymize1M(b *testing.B) {
	benchmarkAnonymize(b, 1_000_000)
}

// BenchmarkAnonymize100k is the same at a tenth of the size.
func BenchmarkAnonymize100k(b *testing.B) {
	benchmarkAnonymize(b, 100_000)
}

func benchmarkAnonymize(b *testing.B, n int) {
	tab := SyntheticHospital(n, 1)
	spec := SyntheticSpec(5, 0.05)
	secret := testSecret(1)
	b.ResetTimer()
	cpu0 := cpuSeconds(b)
	var res *Result
	for range b.N {
		var err error
		if res, err = Anonymize(context.Background(), tab, spec, secret); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuSeconds(b)-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(100*res.Loss.EntropyShare, "%entropy-lost")
	b.ReportMetric(res.Loss.Precision, "precision")
	b.ReportMetric(res.Loss.CAvg, "C_avg")
	b.ReportMetric(100*float64(res.Suppressed)/float64(n), "%suppressed")
	b.ReportMetric(float64(res.Search.Evaluated), "nodes-evaluated")
	for _, line := range res.Explanation {
		b.Log(line)
	}
}

// BenchmarkSHA256 measures the machine's raw hashing speed, to set the
// anonymizer's figures beside (DESIGN.md: ~1.4 GB/s).
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		sha256.Sum256(buf)
	}
}

// cpuSeconds is the processor time the process has used, user and system:
// the machine is shared, so wall time alone says little.
func cpuSeconds(b *testing.B) float64 {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
