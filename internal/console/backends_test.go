package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/posture"
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
		if screen := f.client(t).get("/display/internal_medicine"); !strings.Contains(screen.body, "김*수") || !strings.Contains(screen.body, "K** J*-h**") {
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
