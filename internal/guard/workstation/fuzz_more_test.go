package workstation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/guard/agent"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store/storetest"
)

// fuzzRegistry opens a registry on SQLite with its own keys, audit log and
// inbox (the package's tests use a whole hospital, which imports this
// package and so cannot be used from inside it).
func fuzzRegistry(f *testing.F) *Registry {
	ctx := context.Background()
	db := storetest.OpenSQLite(f)
	if err := db.Migrate(ctx, keys.Migrations, audit.Migrations, alerts.Migrations); err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	p, err := keys.CreateKeyFile(filepath.Join(dir, "kek.json"), []byte("test passphrase"), keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	seed, mac := make([]byte, 32), make([]byte, 32)
	rand.Read(seed)
	rand.Read(mac)
	signer, _ := audit.NewSigner("medsec-audit-test", seed)
	log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: mac, CheckpointFile: filepath.Join(dir, "cp")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { log.Close(context.Background()) })
	r, err := Open(ctx, Config{DB: db, Keys: keys.NewKeyring(db, p), Audit: log, Alerts: alerts.New(db, log)})
	if err != nil {
		f.Fatal(err)
	}
	return r
}

// FuzzParseSealed: the detail of a workstation alert either is refused
// with ErrInvalid or names a workstation and report id without ':'; and
// what it holds opens only as the report sealed for that very workstation
// and id — a detail edited to name another one never opens.
func FuzzParseSealed(f *testing.F) {
	r := fuzzRegistry(f)
	sealed := map[string][]byte{} // "name:id" -> the report as sealed
	for _, s := range []struct{ name, id, path string }{
		{"pacs-viewer-3", "r_01", "/export/KIM_MINSU_19800101/img.dcm"},
		{"pacs-viewer-4", "r-02", `C:\PACS\export\LEE\a.dcm`},
	} {
		rep := agent.Report{ID: s.id, Alert: agent.Alert{Time: time.Unix(1700000000, 0).UTC(), Kind: agent.FileModified,
			Severity: guard.High, Path: s.path, SHA256: strings.Repeat("ab", 32), Reason: "content changed"}}
		a, err := r.inboxAlert(s.name, rep)
		if err != nil {
			f.Fatal(err)
		}
		plain, _ := json.Marshal(rep)
		sealed[s.name+":"+s.id] = plain
		f.Add(a.Detail)
		f.Add(strings.Replace(a.Detail, s.name, "pacs-viewer-9", 1))
		f.Add(strings.Replace(a.Detail, ":"+s.id+":", ":r_99:", 1))
		f.Add(a.Detail[:len(a.Detail)-3])
		f.Add(a.Detail + "\n")
		f.Add(sealedPrefix + a.Detail)
	}
	f.Add(sealedPrefix + "a:b:")
	f.Add(sealedPrefix + "::")
	f.Add("no sealed report here")
	f.Fuzz(func(t *testing.T, detail string) {
		name, id, data, err := parseSealed(detail)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		if strings.Contains(name, ":") || strings.Contains(id, ":") {
			t.Fatalf("parsed name %q id %q with ':'", name, id)
		}
		plain, err := r.reports.Open(reportField(name, id), data)
		if err != nil {
			return
		}
		if want, ok := sealed[name+":"+id]; !ok || !bytes.Equal(plain, want) {
			t.Fatalf("detail opened as %s:%s, which is not the report sealed for it", name, id)
		}
	})
}
