package ingest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store/storetest"
)

// BenchmarkProcess measures the server side alone: bundles of 64 messages
// (from 16 devices of 4 patients) verified, opened, assessed and stored
// through the door on SQLite. Reported per measurement.
func BenchmarkProcess(b *testing.B) {
	for _, per := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch%d", per), func(b *testing.B) {
			f := newFixture(b, storetest.OpenSQLite(b))
			var devs []*testDevice
			for i := range 16 {
				if i%4 == 0 && i > 0 {
					f.patient = f.h.Patient(b)
				}
				devs = append(devs, f.device(fmt.Sprintf("SN-B%02d", i), device.KeyP256))
			}
			bundles := make([][][]byte, b.N)
			for i := range bundles {
				for j := range 64 {
					msg, _ := f.seal(devs[j%len(devs)], per)
					bundles[i] = append(bundles[i], msg)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for _, bundle := range bundles {
				for _, r := range f.in.Process(b.Context(), "gw-bench", bundle) {
					if r.Status != ingest.Stored {
						b.Fatalf("result %+v", r)
					}
				}
			}
			b.ReportMetric(float64(b.N*64*per)/time.Since(start).Seconds(), "measurements/s")
		})
	}
}
