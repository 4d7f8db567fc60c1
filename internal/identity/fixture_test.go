package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// clock is a controllable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a directory on a real database with a real audit log and
// keyring, a clock the test moves, and cheap password hashing.
type fixture struct {
	db    *store.DB
	dir   *Directory
	log   *audit.Log
	clock *clock
	admin Principal // an IT administrator (system-made principal)
}

var fastHash = HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, keys.Migrations, audit.Migrations, Migrations); err != nil {
		t.Fatal(err)
	}
	p, err := keys.CreateKeyFile(filepath.Join(t.TempDir(), "kek.json"), []byte("test passphrase"), keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner("medsec-audit-test", random(32))
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: random(32), CheckpointFile: filepath.Join(t.TempDir(), "cp")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(ctx) })
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	d := NewDirectory(db)
	d.HashParams, d.Audit, d.Keys, d.Now = fastHash, log, keys.NewKeyring(db, p), c.Now
	return &fixture{db: db, dir: d, log: log, clock: c, admin: System("test-admin")}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// passwordFor is a per-user password that passes the policy (it must not
// contain the user name).
func passwordFor(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "correct horse battery " + hex.EncodeToString(sum[:4])
}

// person creates an account and returns it.
func (f *fixture) person(t testing.TB, name, role string) Staff {
	t.Helper()
	n := NewStaff{Username: name, DisplayName: "Test " + name, Role: role, Department: "internal_medicine", Password: passwordFor(name)}
	if role == RoleExternalMaintainer {
		n.ValidUntil = f.clock.Now().Add(30 * 24 * time.Hour)
	}
	s, err := f.dir.CreateBy(context.Background(), f.admin, n, "test account")
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return s
}

// enrol enrols and confirms a TOTP factor and returns its secret.
func (f *fixture) enrol(t testing.TB, s Staff) string {
	t.Helper()
	e, err := f.dir.EnrolTOTP(context.Background(), f.admin, s.ID)
	if err != nil {
		t.Fatalf("enrol %s: %v", s.Username, err)
	}
	if err := f.dir.ConfirmTOTP(context.Background(), f.admin, s.ID, f.code(t, e.Secret)); err != nil {
		t.Fatalf("confirm %s: %v", s.Username, err)
	}
	f.clock.Advance(totpPeriod * time.Second) // the confirming code is spent
	return e.Secret
}

func (f *fixture) code(t testing.TB, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, f.clock.Now(), totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login signs in and returns the session's principal.
func (f *fixture) login(t testing.TB, r LoginRequest) (Principal, string) {
	t.Helper()
	if r.Source == "" {
		r.Source = "192.0.2.10"
	}
	_, token, err := f.dir.Login(context.Background(), r)
	if err != nil {
		t.Fatalf("login %s: %v", r.Username, err)
	}
	p, err := f.dir.Sessions.Authenticate(context.Background(), token, r.Source)
	if err != nil {
		t.Fatalf("authenticate %s: %v", r.Username, err)
	}
	return p, token
}

// events returns the audit events with the action, oldest first.
func (f *fixture) events(t testing.TB, action string) []audit.Event {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT event FROM audit_events ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var e audit.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// auditText is the whole audit log as text, for "no secret leaked" checks.
func (f *fixture) auditText(t testing.TB) string {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT event FROM audit_events ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
		b.WriteByte('\n')
	}
	return b.String()
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}
