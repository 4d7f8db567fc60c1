package dataset_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
)

// BenchmarkCreate is `medsec dataset create` end to end for a hospital of
// synthetic inpatients (registered before the timer starts): screening
// every candidate with the Cedar policy, reading each consenting patient
// through the door (decided and audited), redacting the admission
// summaries, de-identifying to k = 5, writing Parquet, signing the
// manifest and sealing every member's lineage with their data key.
//
//	go test -run '^$' -bench Create -benchtime 3x ./internal/dataset
func BenchmarkCreate(b *testing.B) {
	for _, admissions := range []int{1000, 4000} {
		b.Run(fmt.Sprintf("admissions=%d", admissions), func(b *testing.B) { benchCreate(b, admissions) })
	}
}

func benchCreate(b *testing.B, admissions int) {
	ctx := context.Background()
	f := newFixture(b, lifecycletest.SQLite, 0)
	ps, err := dataset.SyntheticCohort(ctx, f.Door, f.Clerk, f.Doctor, admissions, 7, 0.8)
	if err != nil {
		b.Fatal(err)
	}
	s, raw := spec(b, dataset.SyntheticSpec(5))
	b.ResetTimer()
	var c *dataset.Created
	for i := range b.N {
		out := filepath.Join(b.TempDir(), fmt.Sprint("ds", i))
		if c, err = f.svc.Create(ctx, dataset.CreateRequest{Who: f.researcher, Spec: s, SpecYAML: raw, Out: out}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	el := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(len(ps))/el, "candidates/s")
	b.ReportMetric(float64(c.Manifest.Cohort.Consented)/el, "patients-read/s")
	b.ReportMetric(float64(c.Manifest.Cohort.Rows), "rows")
	b.ReportMetric(float64(c.Manifest.Privacy.Reached.K), "k")
}

// BenchmarkSHA256 is the machine's raw hashing speed, beside the figures.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		sha256.Sum256(buf)
	}
}
