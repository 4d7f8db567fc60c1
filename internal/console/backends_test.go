package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/posture"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// TestBackends runs the console's own tables — tickets, activations,
// portal accounts and sessions, recorded verifications — on SQLite and,
// when MEDSEC_TEST_POSTGRES is set, on PostgreSQL.
func TestBackends(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		f := newFixtureOn(t, b)
		ctx := context.Background()
		desk := f.principal(t, "reception")
		for _, mrn := range f.mrns[:2] {
			if _, err := f.con.IssueTicket(ctx, desk, "internal_medicine", mrn); err != nil {
				t.Fatal(err)
			}
		}
		called, err := f.con.CallNext(ctx, f.principal(t, "nurse.lee"), "internal_medicine", "Room 1")
		if err != nil || called.Number != 1 {
			t.Fatalf("call next = %+v, %v; want ticket 1", called, err)
		}
		if screen := f.screen(t, "internal_medicine").get("/display/internal_medicine"); !strings.Contains(screen.body, "김*수") || !strings.Contains(screen.body, "K** J*-h**") {
			t.Errorf("display on %s lacks the masked names", b.Name)
		}
		code := issueCode(t, f)
		if r := activate(t, f, code, "minsu"); r.status != http.StatusSeeOther {
			t.Fatalf("activate on %s: %d\n%s", b.Name, r.status, r.body)
		}
		p, r := patientSignIn(t, f, "minsu", patientPassword)
		if r.status != http.StatusSeeOther {
			t.Fatalf("patient sign-in on %s: %d", b.Name, r.status)
		}
		if r := p.post("/portal/logout", url.Values{"csrf": {p.csrf("/portal/")}}); r.status != http.StatusSeeOther {
			t.Errorf("patient sign-out: %d", r.status)
		}
		if r := p.get("/portal/"); r.status != http.StatusSeeOther {
			t.Errorf("portal after sign-out: %d, want a redirect", r.status)
		}
		if _, err := posture.Verify(ctx, f.h, "test"); err != nil {
			t.Fatal(err)
		}
		if v, err := posture.LastVerification(ctx, f.h.DB); err != nil || !v.OK {
			t.Errorf("last verification on %s = %+v, %v", b.Name, v, err)
		}
	})
}

// TestMigrateFromVersion1 upgrades the console's tables of version 1 with
// rows in them on both backends: the day's tickets (with their plaintext
// pseudonyms) go, accounts stay and gain the digest column.
func TestMigrateFromVersion1(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, Migrations[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO console_tickets (id, department, day, number, pseudonym, display_name, state, issued_by, created_at) VALUES ('tk_1', 'internal_medicine', '2026-03-02', 1, 'P-aaaaaaaaaaaa', '김*수', 'waiting', 'st_1', 1)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO console_patient_accounts (id, username, pseudonym, password_hash, token, token_expires, created_at) VALUES ('pt_1', 'kimminsu85', 'P-aaaaaaaaaaaa', 'h', ?, 1, 1)`, []byte{1}); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, Migrations); err != nil {
			t.Fatal(err)
		}
		var tickets, pending int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM console_tickets`).Scan(&tickets); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM console_patient_accounts WHERE username_mac IS NULL`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if tickets != 0 || pending != 1 {
			t.Errorf("after the upgrade: %d tickets, %d accounts awaiting their digest; want 0 and 1", tickets, pending)
		}
	})
}
