package tabular

import (
	"testing"
)

func BenchmarkAssessBase(b *testing.B) {
	tab := SyntheticHospital(1000000, 1)
	spec := SyntheticSpec(5, 0.05).withDefaults()
	e, base, _, err := prepare(tab, spec)
	if err != nil {
		b.Fatal(err)
	}
	levels := []int{2, 1, 5, 3, 2, 0, 2, 3}
	b.ResetTimer()
	for range b.N {
		e.assess(base, levels, 0, true)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(base.len()), "ns/entry")
}
