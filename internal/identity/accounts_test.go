package identity

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestAccountChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s := f.person(t, "nurse.moon", RoleNurse)
		p := Profile{DisplayName: "Nurse Moon", Department: "surgery", Position: "charge nurse", Wards: []string{"7B", "ICU"}}
		if err := f.dir.UpdateProfile(ctx, f.admin, s.ID, p, "moved to surgery"); err != nil {
			t.Fatal(err)
		}
		got, err := f.dir.Lookup(ctx, "nurse.moon")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, Profile{got.DisplayName, got.Department, got.Position, got.Wards}); diff != "" {
			t.Errorf("profile (-want +got):\n%s", diff)
		}
		wantErr(t, f.dir.UpdateProfile(ctx, f.admin, s.ID, Profile{DisplayName: ""}, "x"), ErrInvalid)
		wantErr(t, f.dir.UpdateProfile(ctx, f.admin, "st_missing", p, "x"), ErrUnknownStaff)

		until := f.clock.Now().Add(48 * time.Hour)
		if err := f.dir.SetValidity(ctx, f.admin, s.ID, time.Time{}, until, "temporary contract"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, f.dir.SetValidity(ctx, f.admin, s.ID, time.Time{}, f.clock.Now().Add(-time.Hour), "x"), ErrInvalid)
		f.clock.Advance(49 * time.Hour)
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "nurse.moon", Password: passwordFor("nurse.moon")})
		wantErr(t, err, ErrInactive)

		if got := len(f.events(t, "staff.update")) + len(f.events(t, "staff.validity")); got != 2 {
			t.Errorf("got %d audited changes, want 2", got)
		}
		if err := f.dir.Disable(ctx, f.admin, f.admin.ID, "x"); err == nil {
			t.Error("an administrator disabled their own account")
		}
	})
}

func TestRemoveSecondFactor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s := f.person(t, "sec.lost", RoleSecurityOfficer)
		f.enrol(t, s)
		if err := f.dir.RemoveTOTP(ctx, f.admin, s.ID, "phone lost, identity checked in person"); err != nil {
			t.Fatal(err)
		}
		got, _ := f.dir.Get(ctx, s.ID)
		if got.TOTP {
			t.Error("the second factor is still enrolled")
		}
		_, _, err := f.dir.Login(ctx, LoginRequest{Username: "sec.lost", Password: passwordFor("sec.lost"), TOTP: "123456"})
		wantErr(t, err, ErrMFARequired)
	})
}

func TestPasskeyRemoval(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		pk := newPasskeys(t, f)
		f.person(t, "dr.lost", RolePhysician)
		p, _ := f.login(t, LoginRequest{Username: "dr.lost", Password: passwordFor("dr.lost")})
		soft := registerPasskey(t, pk, p)
		id := b64.EncodeToString(soft.credID)
		wantErr(t, pk.Remove(ctx, p, p.ID, "no-such-passkey", "x"), ErrInvalid)
		if err := pk.Remove(ctx, p, p.ID, id, "lost the phone"); err != nil {
			t.Fatal(err)
		}
		a, cid, _ := pk.BeginLogin(ctx)
		_, _, err := pk.FinishLogin(ctx, cid, soft.assert(t, a, flagUP|flagUV), "x")
		wantErr(t, err, ErrBadCredentials)
	})
}
