package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// admins signs in two administrators with their second factor.
func (f *fixture) admins(t *testing.T) (Principal, Principal) {
	t.Helper()
	var out []Principal
	for _, u := range []struct{ name, role string }{{"it.one", RoleITAdmin}, {"sec.two", RoleSecurityOfficer}} {
		s := f.person(t, u.name, u.role)
		secret := f.enrol(t, s)
		p, _ := f.login(t, LoginRequest{Username: u.name, Password: passwordFor(u.name), TOTP: f.code(t, secret)})
		out = append(out, p)
	}
	return out[0], out[1]
}

func TestTwoPersonApproval(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		itOne, secTwo := f.admins(t)
		vendor := f.person(t, "vendor.kim", RoleExternalMaintainer)
		now := f.clock.Now()
		g, err := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: vendor.ID, What: ScopePatientData, Systems: []string{"pacs"},
			Until: now.Add(8 * time.Hour), Reason: "restore a damaged PACS study (ticket 4411)"})
		if err != nil {
			t.Fatal(err)
		}
		if g.State != GrantPending || !g.Privileged {
			t.Fatalf("got state %s privileged %v, want a pending privileged grant", g.State, g.Privileged)
		}
		if active, _ := f.dir.ActiveGrants(ctx, vendor.ID, now); len(active) != 0 {
			t.Fatalf("got %d active grants before approval, want none", len(active))
		}
		if pend, err := f.dir.PendingGrants(ctx); err != nil || len(pend) != 1 || pend[0].ID != g.ID {
			t.Fatalf("got pending %+v (%v), want %s", pend, err, g.ID)
		}
		// The requester cannot approve; neither can a forged principal or a physician.
		_, err = f.dir.ApproveGrant(ctx, itOne, g.ID, "looks fine")
		wantErr(t, err, ErrSelfApproval)
		f.person(t, "dr.ahn", RolePhysician)
		doc, _ := f.login(t, LoginRequest{Username: "dr.ahn", Password: passwordFor("dr.ahn")})
		for _, by := range []Principal{doc, {Staff: Staff{ID: "st_fake", Role: RoleSecurityOfficer}}} {
			_, err = f.dir.ApproveGrant(ctx, by, g.ID, "looks fine")
			wantErr(t, err, ErrForbidden)
		}
		if n := len(f.events(t, "grant.approve")); n != 3 {
			t.Errorf("got %d audited grant.approve refusals, want 3", n)
		}
		got, err := f.dir.ApproveGrant(ctx, secTwo, g.ID, "ticket checked with the vendor")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != GrantApproved || got.DecidedBy != secTwo.ID {
			t.Errorf("got %s by %s, want approved by %s", got.State, got.DecidedBy, secTwo.ID)
		}
		active, err := f.dir.ActiveGrants(ctx, vendor.ID, now)
		if err != nil || len(active) != 1 || active[0].ID != g.ID {
			t.Fatalf("got active %+v (%v), want the approved grant", active, err)
		}
		_, err = f.dir.ApproveGrant(ctx, secTwo, g.ID, "again")
		wantErr(t, err, ErrGrantState)
		// Revoked: gone at once.
		if _, err := f.dir.RevokeGrant(ctx, itOne, g.ID, "work finished early"); err != nil {
			t.Fatal(err)
		}
		if active, _ := f.dir.ActiveGrants(ctx, vendor.ID, now); len(active) != 0 {
			t.Errorf("got %d active grants after revocation, want none", len(active))
		}
		ok := 0
		for _, e := range f.events(t, "grant.approve") {
			if e.Outcome == audit.Success {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("got %d successful approvals audited, want 1", ok)
		}
	})
}

func TestHolderCannotApproveOwnGrant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		itOne, secTwo := f.admins(t)
		// it.one asks for patient data for themselves; sec.two requests it on
		// their behalf, and the holder may not approve it either.
		g, err := f.dir.RequestGrant(ctx, secTwo, GrantRequest{StaffID: itOne.ID, What: ScopePatientData, Systems: []string{"emr"},
			Until: f.clock.Now().Add(time.Hour), Reason: "database repair"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.dir.ApproveGrant(ctx, itOne, g.ID, "mine")
		wantErr(t, err, ErrSelfApproval)
		_, err = f.dir.ApproveGrant(ctx, secTwo, g.ID, "mine")
		wantErr(t, err, ErrSelfApproval)
		if _, err := f.dir.RejectGrant(ctx, secTwo, g.ID, "x"); err == nil {
			t.Error("the requester rejected their own request; want only a second administrator to decide")
		}
	})
}

func TestGrantStatesAndExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		itOne, secTwo := f.admins(t)
		vendor := f.person(t, "vendor.choi", RoleExternalMaintainer)
		now := f.clock.Now()
		req := func(until time.Duration) Grant {
			g, err := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: vendor.ID, What: ScopeSystem, Systems: []string{"ocs", "emr"},
				From: now, Until: now.Add(until), Reason: "OCS interface upgrade"})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		sys := req(2 * time.Hour)
		if sys.State != GrantApproved || sys.Privileged {
			t.Fatalf("got %s privileged=%v, want a system grant approved at once", sys.State, sys.Privileged)
		}
		pd, err := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: vendor.ID, What: ScopePatientData, Systems: []string{"emr"},
			Patient: "pt_123", Until: now.Add(time.Hour), Reason: "fix one record"})
		if err != nil {
			t.Fatal(err)
		}
		rej, _ := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: vendor.ID, What: ScopePatientData, Systems: []string{"*"},
			Until: now.Add(time.Hour), Reason: "all of it"})
		if _, err := f.dir.RejectGrant(ctx, secTwo, rej.ID, "too broad"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(90 * time.Minute)
		later := f.clock.Now()
		// The pending grant expired while waiting: it can no longer be approved.
		_, err = f.dir.ApproveGrant(ctx, secTwo, pd.ID, "late")
		wantErr(t, err, ErrGrantState)
		states := map[string]GrantState{}
		all, _ := f.dir.Grants(ctx, vendor.ID)
		for _, g := range all {
			states[g.ID] = g.StateAt(later)
		}
		want := map[string]GrantState{sys.ID: GrantApproved, pd.ID: GrantExpired, rej.ID: GrantRejected}
		if diff := cmp.Diff(want, states); diff != "" {
			t.Errorf("grant states (-want +got):\n%s", diff)
		}
		f.clock.Advance(time.Hour)
		if active, _ := f.dir.ActiveGrants(ctx, vendor.ID, f.clock.Now()); len(active) != 0 {
			t.Errorf("got %d active grants after their end, want none", len(active))
		}
	})
}

func TestGrantRequestsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		itOne, _ := f.admins(t)
		vendor := f.person(t, "vendor.yoo", RoleExternalMaintainer)
		nurse := f.person(t, "nurse.im", RoleNurse)
		now := f.clock.Now()
		base := GrantRequest{StaffID: vendor.ID, What: ScopeSystem, Systems: []string{"pacs"}, Until: now.Add(time.Hour), Reason: "upgrade"}
		tests := []struct {
			name   string
			change func(*GrantRequest)
		}{
			{"unknown scope", func(r *GrantRequest) { r.What = "root" }},
			{"unknown system", func(r *GrantRequest) { r.Systems = []string{"emr'; DROP TABLE staff_grants; --"} }},
			{"no systems", func(r *GrantRequest) { r.Systems = nil }},
			{"no end", func(r *GrantRequest) { r.Until = time.Time{} }},
			{"ends before start", func(r *GrantRequest) { r.From = now.Add(2 * time.Hour) }},
			{"already ended", func(r *GrantRequest) { r.From, r.Until = now.Add(-2*time.Hour), now.Add(-time.Hour) }},
			{"too long", func(r *GrantRequest) { r.Until = now.Add(400 * 24 * time.Hour) }},
			{"past the account's end", func(r *GrantRequest) { r.Until = now.Add(60 * 24 * time.Hour) }},
			{"patient on a system grant", func(r *GrantRequest) { r.Patient = "pt_1" }},
			{"no reason", func(r *GrantRequest) { r.Reason = " " }},
			{"oversized reason", func(r *GrantRequest) { r.Reason = strings.Repeat("x", MaxReasonLen+1) }},
			{"role grant with systems", func(r *GrantRequest) { r.StaffID, r.What = nurse.ID, RolePhysician }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := base
				tc.change(&r)
				_, err := f.dir.RequestGrant(ctx, itOne, r)
				wantErr(t, err, ErrInvalid)
			})
		}
		_, err := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: "st_nobody", What: ScopeSystem, Systems: []string{"emr"}, Until: now.Add(time.Hour), Reason: "x"})
		wantErr(t, err, ErrUnknownStaff)
		if all, _ := f.dir.Grants(ctx, vendor.ID); len(all) != 0 {
			t.Errorf("got %d grants stored, want none", len(all))
		}
	})
}

func TestRoleGrantSetsActingRole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		itOne, secTwo := f.admins(t)
		nurse := f.person(t, "nurse.go", RoleNurse)
		now := f.clock.Now()
		// A nurse covering as pharmacist for a day: not privileged, at once.
		g, err := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: nurse.ID, What: RolePharmacist, Until: now.Add(24 * time.Hour), Reason: "pharmacy cover"})
		if err != nil || g.State != GrantApproved {
			t.Fatalf("got %+v (%v), want an approved role grant", g, err)
		}
		p, token := f.login(t, LoginRequest{Username: "nurse.go", Password: passwordFor("nurse.go")})
		if p.Role != RolePharmacist || p.RoleGrant != g.ID {
			t.Errorf("got role %s (grant %q), want pharmacist through %s", p.Role, p.RoleGrant, g.ID)
		}
		// Promoted to security officer: privileged, pending until approved;
		// once approved, the password-only session no longer serves.
		sg, err := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: nurse.ID, What: RoleSecurityOfficer, From: now.Add(time.Minute), Reason: "new job"})
		if err != nil || sg.State != GrantPending {
			t.Fatalf("got %+v (%v), want a pending privileged role grant", sg, err)
		}
		if _, err := f.dir.ApproveGrant(ctx, secTwo, sg.ID, "HR confirmed"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Minute)
		_, err = f.dir.Sessions.Authenticate(ctx, token, "x")
		wantErr(t, err, ErrMFARequired)
		f.clock.Advance(24 * time.Hour)
		if _, err := f.dir.RevokeGrant(ctx, itOne, sg.ID, "moved back"); err != nil {
			t.Fatal(err)
		}
		p, _ = f.login(t, LoginRequest{Username: "nurse.go", Password: passwordFor("nurse.go")})
		if p.Role != RoleNurse || p.RoleGrant != "" {
			t.Errorf("got role %s (grant %q) after both grants ended, want nurse", p.Role, p.RoleGrant)
		}
	})
}

func TestAccessReview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		itOne, _ := f.admins(t)
		idle := f.person(t, "dr.idle", RolePhysician)
		busy := f.person(t, "dr.busy", RolePhysician)
		vendor := f.person(t, "vendor.park", RoleExternalMaintainer)
		start := f.clock.Now()
		used, _ := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: busy.ID, What: ScopeSystem, Systems: []string{"emr"},
			Until: start.Add(200 * 24 * time.Hour), Reason: "EMR super-user"})
		unused, _ := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: idle.ID, What: ScopeSystem, Systems: []string{"ocs"},
			Until: start.Add(200 * 24 * time.Hour), Reason: "OCS super-user"})
		pending, _ := f.dir.RequestGrant(ctx, itOne, GrantRequest{StaffID: vendor.ID, What: ScopePatientData, Systems: []string{"pacs"},
			Until: start.Add(29 * 24 * time.Hour), Reason: "PACS migration"})
		f.clock.Advance(100 * 24 * time.Hour)
		f.login(t, LoginRequest{Username: "dr.busy", Password: passwordFor("dr.busy")})
		if err := f.dir.TouchGrant(ctx, used.ID, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		wantErr(t, f.dir.TouchGrant(ctx, "gr_nope", f.clock.Now()), ErrUnknownGrant)
		r, err := f.dir.AccessReview(ctx, ReviewOptions{Now: start.Add(100 * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		var unusedRights []string
		for _, u := range r.Unused {
			unusedRights = append(unusedRights, u.Username+": "+u.Right)
		}
		// it.one and sec.two signed in at the start (100 days ago), the vendor never.
		want := []string{"dr.idle: role physician", "dr.idle: grant " + unused.ID + " system", "it.one: role it_admin",
			"sec.two: role security_officer"}
		if diff := cmp.Diff(want, unusedRights); diff != "" {
			t.Errorf("unused rights (-want +got):\n%s", diff)
		}
		if len(r.Pending) != 0 {
			t.Errorf("got pending %v, want none (the request expired after 29 days)", r.Pending)
		}
		// At day 25 the vendor's account (30 days) and its pending grant show.
		r, _ = f.dir.AccessReview(ctx, ReviewOptions{Now: start.Add(25 * 24 * time.Hour)})
		if len(r.Pending) != 1 || r.Pending[0].ID != pending.ID {
			t.Errorf("got pending %+v, want %s", r.Pending, pending.ID)
		}
		if len(r.Expiring) != 1 || r.Expiring[0].What != "account" || r.Expiring[0].StaffID != vendor.ID {
			t.Errorf("got expiring %+v, want the vendor's account", r.Expiring)
		}
		var text bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"vendor.park", "Waiting for a second administrator (1)", "PACS migration", "Ending within 7 days (1)"} {
			if !strings.Contains(text.String(), s) {
				t.Errorf("text report lacks %q:\n%s", s, text.String())
			}
		}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back AccessReview
		if err := json.Unmarshal(raw, &back); err != nil || len(back.Holders) != len(r.Holders) {
			t.Errorf("JSON round trip: %v, %d holders want %d", err, len(back.Holders), len(r.Holders))
		}
		if strings.Contains(string(raw), "argon2") || strings.Contains(string(raw), "totp_secret") {
			t.Error("the review holds secrets")
		}
	})
}
