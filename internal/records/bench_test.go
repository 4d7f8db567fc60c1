package records

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/medsec/medsec/internal/store/storetest"
)

// Sealed 1 KB record writes and reads through the door on SQLite: sealing
// (two AES-256-GCM seals), the decision (a test allow list here: the Cedar
// cost is measured in package access), the durable audit event and the
// insert. Run with -bench . -benchtime 3s.

func benchPayload() []byte {
	p := make([]byte, 1024)
	rand.Read(p)
	return p
}

func BenchmarkWriteSingle(b *testing.B) {
	f := newFixtureTB(b, storetest.OpenSQLite(b))
	reg := f.registerTB(b, alice)
	req := Request{Who: f.doc, Purpose: "TREAT"}
	rec := []Record{{Class: ClassObservation, Code: "8867-4", Payload: benchPayload()}}
	b.ResetTimer()
	for range b.N {
		if _, err := f.door.AddRecords(context.Background(), req, reg.ID, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkWriteBatch100(b *testing.B) {
	f := newFixtureTB(b, storetest.OpenSQLite(b))
	reg := f.registerTB(b, alice)
	req := Request{Who: f.doc, Purpose: "TREAT"}
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Class: ClassObservation, Code: "8867-4", Payload: benchPayload()}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := f.door.AddRecords(context.Background(), req, reg.ID, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRead reads single records by id from 32 goroutines at once (a
// busy server), each read audited durably with group commit.
func BenchmarkRead(b *testing.B) {
	f := newFixtureTB(b, storetest.OpenSQLite(b))
	reg := f.registerTB(b, alice)
	req := Request{Who: f.doc, Purpose: "TREAT"}
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Class: ClassObservation, Code: "8867-4", Payload: benchPayload()}
	}
	ids, err := f.door.AddRecords(context.Background(), req, reg.ID, recs)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.door.Record(context.Background(), req, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// The machine's raw limits, measured in the same run for the ratio.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<16)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		sha256.Sum256(buf)
	}
}

func BenchmarkAESGCMSeal1K(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	gcm, _ := cipher.NewGCM(block)
	nonce, pt := make([]byte, 12), benchPayload()
	out := make([]byte, 0, 1100)
	b.SetBytes(1024)
	for range b.N {
		gcm.Seal(out[:0], nonce, pt, nil)
	}
}
