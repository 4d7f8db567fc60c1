package imaging_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

// BenchmarkImport imports media of 200 DICOM files (64×64, 16-bit) into
// the store of a real installation (SQLite): scan, read again, seal with
// the patient's key, one door transaction and audit event per file. Each
// round imports a new study, so nothing is a duplicate.
//
//	go test -run '^$' -bench Import -benchtime 3x ./internal/imaging/
func BenchmarkImport(b *testing.B) {
	f := newFixture(b, guard.Config{})
	const files = 200
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := b.TempDir()
		if _, err := dicomtest.WriteDir(root, dicomtest.Options{Seed: uint64(100 + i), Patients: 1, SeriesPerStudy: 4, InstancesPerSeries: files / 4,
			Rows: 64, Columns: 64, Override: []dicomtest.Patient{{ID: testMRN}}}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := f.in.Import(context.Background(), imaging.Request{Paths: []string{root}, Origin: fmt.Sprintf("bench CD %d", i)})
		if err != nil || rep.Stored != files {
			b.Fatalf("import: %v, %d of %d stored", err, rep.Stored, files)
		}
	}
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}
