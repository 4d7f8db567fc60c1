package audit

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/medsec/medsec/internal/store/storetest"
)

// FuzzCheckProof: an inclusion proof comes from outside (medsec audit
// check-proof proof.json, an auditor's tool): any bytes give an error or a
// proof that really checks, never a panic. A proof that checks must carry
// the signed checkpoint's size and the leaf it proves.
func FuzzCheckProof(f *testing.F) {
	fx := newFixtureTB(f, storetest.OpenSQLite(f), 8)
	ctx := context.Background()
	for i := range 20 {
		if _, err := fx.log.Append(ctx, testEvent(i)); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := fx.log.Checkpoint(ctx); err != nil {
		f.Fatal(err)
	}
	for _, idx := range []uint64{0, 7, 19} {
		p, err := fx.vf.Prove(ctx, idx)
		if err != nil {
			f.Fatal(err)
		}
		raw, _ := json.Marshal(p)
		f.Add(raw)
	}
	f.Add([]byte(`{"index":1,"size":0,"proof":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p InclusionProof
		if json.Unmarshal(raw, &p) != nil {
			return
		}
		if err := CheckProof(p, fx.vf.NoteVerifier); err != nil {
			return
		}
		cp, err := OpenCheckpoint(p.Checkpoint, fx.vf.NoteVerifier)
		if err != nil || cp.Size != p.Size || p.Index >= p.Size {
			t.Errorf("a proof checked with checkpoint %+v (%v), size %d, index %d", cp, err, p.Size, p.Index)
		}
	})
}
