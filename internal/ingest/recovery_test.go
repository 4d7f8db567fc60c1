package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// TestRecoverySettlesAbandonedClaims plays the two crashes a server can
// have around the door's commit, and checks every message ends up stored
// exactly once.
func TestRecoverySettlesAbandonedClaims(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		d := f.device("SN-CRASH", device.KeyP256)

		// Crash after the door committed, before the ledger said so.
		stored, _ := f.seal(d, 3)
		if res := f.process(stored); res[0].Status != ingest.Stored {
			t.Fatalf("first delivery: %+v", res[0])
		}
		mustExec(t, db, `UPDATE ingest_messages SET state = 'pending', owner = 'ingest-dead'`)

		// Crash after the claim, before the door was reached.
		lost, hdr := f.seal(d, 2)
		mustExec(t, db, `INSERT INTO ingest_messages (message_id, device, seq, gateway, sent_at, state, owner, claimed_at) VALUES (?, 'SN-CRASH', 2, 'gw', 0, 'pending', 'ingest-dead', ?)`,
			hdr.MessageID[:], f.clock.t.UnixNano())

		restarted := f.ingester()
		if res := restarted.Process(ctx, "gw-test", [][]byte{lost}); res[0].Status != ingest.Retry {
			t.Errorf("a message claimed by a live-looking process: got %s, want retry", res[0].Status)
		}
		rep, err := restarted.Recover(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Stored != 1 || rep.Released != 1 {
			t.Errorf("recovery = %+v, want 1 stored and 1 released", rep)
		}
		got := statuses(restarted.Process(ctx, "gw-test", [][]byte{stored, lost}))
		if got[0] != ingest.Duplicate || got[1] != ingest.Stored {
			t.Errorf("redelivery after recovery = %v, want [duplicate stored]", got)
		}
		if readings, prov := f.stored(f.patient.ID); len(readings) != 5 || len(prov) != 2 {
			t.Errorf("stored %d readings, %d provenance; want 5 and 2", len(readings), len(prov))
		}
		if rep, _ := restarted.Recover(ctx, true); rep.Stored+rep.Released != 0 || rep.Scanned > 4 {
			t.Errorf("second recovery = %+v: want nothing to settle and only new events scanned", rep)
		}
	})
}

// TestLeaseExpiry: another process's claim is trusted for the lease, then
// settled by the next delivery.
func TestLeaseExpiry(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ctx := context.Background()
	d := f.device("SN-LEASE", device.KeyP256)
	msg, hdr := f.seal(d, 1)
	mustExec(t, f.h.DB, `INSERT INTO ingest_messages (message_id, device, seq, gateway, sent_at, state, owner, claimed_at) VALUES (?, 'SN-LEASE', 1, 'gw', 0, 'pending', 'ingest-other', ?)`,
		hdr.MessageID[:], f.clock.t.UnixNano())
	if res := f.process(msg); res[0].Status != ingest.Retry {
		t.Fatalf("within the lease: %s, want retry", res[0].Status)
	}
	f.clock.t = f.clock.t.Add(3 * time.Minute)
	if res := f.process(msg); res[0].Status != ingest.Retry {
		t.Fatalf("past the lease, before settling: %s, want retry", res[0].Status)
	}
	waitFor(t, func() bool { return f.process(msg)[0].Status == ingest.Stored })
	if readings, _ := f.stored(f.patient.ID); len(readings) != 1 {
		t.Errorf("stored %d readings, want 1", len(readings))
	}
	_ = ctx
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 100 {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not reached in 2 s")
}

func mustExec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

// TestPruneForgetsOnlyMessagesTooOldToReturn: ledger rows of messages older
// than the accepted age go; recent ones and claims stay, and an old
// message sent again is refused before the ledger matters.
func TestPruneForgetsOnlyMessagesTooOldToReturn(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	d := f.device("SN-PRUNE", device.KeyP256)
	msg, _ := f.seal(d, 1)
	if res := f.process(msg); res[0].Status != ingest.Stored {
		t.Fatal(res[0])
	}
	mustExec(t, f.h.DB, `INSERT INTO ingest_messages (message_id, device, seq, gateway, sent_at, state, owner, claimed_at) VALUES (?, 'SN-X', 9, 'gw', 0, 'pending', 'ingest-dead', 0)`, []byte("0123456789abcdef"))
	if n, err := f.in.Prune(context.Background()); err != nil || n != 0 {
		t.Fatalf("pruned %d rows (%v) right away, want 0", n, err)
	}
	f.clock.t = f.clock.t.Add(8 * 24 * time.Hour)
	if n, err := f.in.Prune(context.Background()); err != nil || n != 1 {
		t.Fatalf("pruned %d rows (%v) after 8 days, want 1 (the stored one, not the claim)", n, err)
	}
	if res := f.process(msg); res[0].Status != ingest.Rejected || res[0].Reason != phd.ReasonTimestampTooOld {
		t.Errorf("the pruned message sent again: %s %s, want rejected timestamp-too-old", res[0].Status, res[0].Reason)
	}
}
