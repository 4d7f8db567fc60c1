package dataset

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/medsec/medsec/internal/deid/tabular"
)

// BenchmarkDeidTable is `medsec deid table` end to end on 100,000
// synthetic admissions: parse the CSV, de-identify to k = 5 over 8
// quasi-identifiers with at most 5 % suppressed, write the CSV.
//
//	go test -run '^$' -bench DeidTable -benchtime 3x ./internal/dataset
func BenchmarkDeidTable(b *testing.B) {
	const n = 100_000
	var in bytes.Buffer
	if err := tabular.WriteCSV(&in, tabular.SyntheticHospital(n, 1)); err != nil {
		b.Fatal(err)
	}
	spec := tabular.SyntheticSpec(5, 0.05)
	secret := bytes.Repeat([]byte{7}, 32)
	out := filepath.Join(b.TempDir(), "out.csv")
	b.SetBytes(int64(in.Len()))
	b.ResetTimer()
	for i := range b.N {
		t, err := tabular.ReadCSV(bytes.NewReader(in.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		res, err := tabular.Anonymize(context.Background(), t, spec, secret)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteTableFile(out+string(rune('a'+i%26)), FormatCSV, res.Table); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriteParquet writes 100,000 de-identified rows as Parquet.
func BenchmarkWriteParquet(b *testing.B) {
	t := tabular.SyntheticHospital(100_000, 1)
	var buf bytes.Buffer
	b.ResetTimer()
	for range b.N {
		buf.Reset()
		if err := writeParquet(&buf, t); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(t.Rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(buf.Len()), "bytes")
}
