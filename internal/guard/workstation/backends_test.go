package workstation_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard/workstation"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func key32() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// TestRegistryOnEveryBackend enrols, re-enrols, revokes and lists on
// SQLite and, when MEDSEC_TEST_POSTGRES is set, PostgreSQL; the CA is the
// same every time the registry opens.
func TestRegistryOnEveryBackend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, keys.Migrations, audit.Migrations, alerts.Migrations); err != nil {
			t.Fatal(err)
		}
		p, err := keys.CreateKeyFile(filepath.Join(t.TempDir(), "kek.json"), []byte("ws backend"), keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		kr := keys.NewKeyring(db, p)
		signer, _ := audit.NewSigner("medsec-ws-test", key32())
		log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: key32(), CheckpointFile: filepath.Join(t.TempDir(), "cp")})
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close(ctx)
		cfg := workstation.Config{DB: db, Keys: kr, Audit: log, Alerts: alerts.New(db, log)}
		reg, err := workstation.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := workstation.Open(ctx, cfg)
		if err != nil || string(again.CAPEM()) != string(reg.CAPEM()) {
			t.Fatalf("the CA changed between openings (%v)", err)
		}
		for _, name := range []string{"a", "b", "a"} {
			if _, err := reg.Enroll(ctx, name, "cli:test", 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := reg.Revoke(ctx, "b", "cli:test", "gone"); err != nil {
			t.Fatal(err)
		}
		ws, err := reg.List(ctx)
		if err != nil || len(ws) != 2 || ws[0].Name != "a" || !ws[0].Revoked.IsZero() || ws[1].Revoked.IsZero() {
			t.Errorf("list %+v, %v; want a active and b revoked", ws, err)
		}
	})
}
