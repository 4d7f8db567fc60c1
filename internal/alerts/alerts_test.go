package alerts

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestInbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, audit.Migrations, Migrations); err != nil {
			t.Fatal(err)
		}
		seed, mac := make([]byte, 32), make([]byte, 32)
		rand.Read(seed)
		rand.Read(mac)
		signer, _ := audit.NewSigner("medsec-audit-test", seed)
		log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: mac, CheckpointFile: filepath.Join(t.TempDir(), "cp")})
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close(ctx)
		in := New(db, log)
		ok, err := in.Raise(ctx, db, Alert{Kind: KindOverdue, Summary: "receipt overdue", Dedup: "overdue:1"})
		if err != nil || !ok {
			t.Fatalf("raise: %v %v", ok, err)
		}
		if ok, _ := in.Raise(ctx, db, Alert{Kind: KindOverdue, Summary: "receipt overdue", Dedup: "overdue:1"}); ok {
			t.Error("a deduplicated alert was raised twice")
		}
		// A duplicate raised inside a transaction must not break it (on
		// PostgreSQL a failed statement aborts the whole transaction).
		err = db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			if ok, err := in.Raise(ctx, tx, Alert{Kind: KindOverdue, Summary: "receipt overdue", Dedup: "overdue:1"}); ok || err != nil {
				t.Errorf("duplicate in a transaction: raised %v, %v", ok, err)
			}
			_, err := log.AppendTx(ctx, tx, audit.Event{Actor: "test", Action: "alert.test", Outcome: audit.Success})
			return err
		})
		if err != nil {
			t.Errorf("the transaction after a duplicate alert failed: %v", err)
		}
		in.Raise(ctx, db, Alert{Kind: KindBreakGlass, Severity: Critical, Summary: "break-glass by st_1", Patient: "P-x", Resource: "BreakGlass/bg_1"})
		if _, err := in.Raise(ctx, db, Alert{Kind: KindAnomaly}); err == nil {
			t.Error("an alert without a summary was raised")
		}
		open, _ := in.List(ctx, Filter{OpenOnly: true})
		if len(open) != 2 {
			t.Fatalf("got %d open alerts, want 2", len(open))
		}
		officer := identity.System("test") // not a security officer
		if err := in.Acknowledge(ctx, officer, open[0].ID, "looked at it"); err == nil {
			t.Error("a system job acknowledged an alert")
		}
		if open[0].Resource != "BreakGlass/bg_1" {
			t.Errorf("newest alert's resource %q, want the break-glass session", open[0].Resource)
		}
		counts, _ := in.Counts(ctx)
		if counts[KindOverdue] != 1 || counts[KindBreakGlass] != 1 {
			t.Errorf("counts %v", counts)
		}
		if err := db.Migrate(ctx, identity.Migrations); err != nil {
			t.Fatal(err)
		}
		dir := identity.NewDirectory(db)
		dir.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
		pw := "officer test password long"
		if _, err := dir.Create(ctx, identity.NewStaff{Username: "han", DisplayName: "Han", Role: identity.RoleSecurityOfficer, Password: pw}); err != nil {
			t.Fatal(err)
		}
		han, err := dir.Authenticate(ctx, "han", pw, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Acknowledge(ctx, han, open[0].ID, ""); err == nil {
			t.Error("acknowledged without a note")
		}
		if err := in.Acknowledge(ctx, han, open[0].ID, "reviewed with the ward; legitimate emergency"); err != nil {
			t.Fatal(err)
		}
		if err := in.Acknowledge(ctx, han, open[0].ID, "again"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second acknowledgement: got %v, want ErrNotFound", err)
		}
		if err := in.Acknowledge(ctx, han, "al_nope", "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown alert: got %v", err)
		}
		left, _ := in.List(ctx, Filter{OpenOnly: true})
		all, _ := in.List(ctx, Filter{})
		if len(left) != 1 || len(all) != 2 || all[0].Open() == all[1].Open() {
			t.Errorf("after one acknowledgement: %d open of %d", len(left), len(all))
		}
		var last audit.Event
		audit.Scan(ctx, db, "main", 0, 0, func(e audit.Event) error { last = e; return nil })
		if last.Action != "alert.acknowledge" || last.Actor != han.ID || last.Reason == "" {
			t.Errorf("last audit event %+v, want the acknowledgement", last)
		}
	})
}
