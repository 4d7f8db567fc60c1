package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestLoginAndSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		nurse := f.person(t, "nurse.lee", RoleNurse)
		p, _ := f.login(t, LoginRequest{Username: "nurse.lee", Password: passwordFor("nurse.lee")})
		if !p.Verified() || p.ID != nurse.ID || p.Role != RoleNurse || p.MFA || p.SessionID == "" || p.Method != "password" {
			t.Fatalf("got principal %+v, want a verified nurse session without MFA", p)
		}
		got, err := f.dir.Get(context.Background(), nurse.ID)
		if err != nil || !got.LastLogin.Equal(f.clock.Now()) {
			t.Errorf("got last login %v (%v), want %v", got.LastLogin, err, f.clock.Now())
		}
		ev := f.events(t, "staff.login")
		if len(ev) != 1 || ev[0].Outcome != audit.Success || ev[0].Actor != nurse.ID {
			t.Errorf("got login events %+v, want one success by %s", ev, nurse.ID)
		}
		if strings.Contains(f.auditText(t), passwordFor("nurse.lee")) {
			t.Error("the audit log holds the password")
		}
	})
}

func TestLoginRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.person(t, "dr.kim", RolePhysician)
		long := strings.Repeat("x", 10_000)
		tests := []struct {
			name string
			req  LoginRequest
			want error
		}{
			{"wrong password", LoginRequest{Username: "dr.kim", Password: "wrong password here"}, ErrBadCredentials},
			{"unknown user", LoginRequest{Username: "dr.nobody", Password: passwordFor("dr.kim")}, ErrBadCredentials},
			{"sql injection in user name", LoginRequest{Username: "' OR '1'='1' --", Password: "x' OR 1=1 --"}, ErrBadCredentials},
			{"sql injection with statement", LoginRequest{Username: "dr.kim'; DROP TABLE staff; --", Password: passwordFor("dr.kim")}, ErrBadCredentials},
			{"oversized user name", LoginRequest{Username: long, Password: passwordFor("dr.kim")}, ErrBadCredentials},
			{"oversized password", LoginRequest{Username: "dr.kim", Password: long}, ErrBadCredentials},
			{"oversized code", LoginRequest{Username: "dr.kim", Password: passwordFor("dr.kim"), TOTP: long}, ErrBadCredentials},
			{"empty", LoginRequest{}, ErrBadCredentials},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, token, err := f.dir.Login(context.Background(), tc.req)
				wantErr(t, err, tc.want)
				if token != "" {
					t.Errorf("got a token %q with the error", token)
				}
			})
		}
		// The injection attempts changed nothing: the account still signs in.
		f.login(t, LoginRequest{Username: "dr.kim", Password: passwordFor("dr.kim")})
	})
}

func TestCreateRefusesBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ok := NewStaff{Username: "ok.user", DisplayName: "OK", Role: RoleNurse, Password: passwordFor("ok")}
		tests := []struct {
			name   string
			change func(*NewStaff)
			want   error
		}{
			{"sql injection user name", func(n *NewStaff) { n.Username = "x'); DROP TABLE staff; --" }, ErrInvalid},
			{"upper case", func(n *NewStaff) { n.Username = "Dr.Kim" }, ErrInvalid},
			{"too long user name", func(n *NewStaff) { n.Username = strings.Repeat("a", MaxUsernameLen+1) }, ErrInvalid},
			{"unknown role", func(n *NewStaff) { n.Role = "superuser" }, ErrInvalid},
			{"too long display name", func(n *NewStaff) { n.DisplayName = strings.Repeat("가", MaxNameLen) }, ErrInvalid},
			{"control character", func(n *NewStaff) { n.Department = "ward\x00" }, ErrInvalid},
			{"too many wards", func(n *NewStaff) { n.Wards = make([]string, MaxWards+1) }, ErrInvalid},
			{"ward with comma", func(n *NewStaff) { n.Wards = []string{"5A,7B"} }, ErrInvalid},
			{"short password", func(n *NewStaff) { n.Password = "short" }, ErrWeakPassword},
			{"common password", func(n *NewStaff) { n.Password = "password1234" }, ErrWeakPassword},
			{"maintainer without end", func(n *NewStaff) { n.Role = RoleExternalMaintainer }, ErrInvalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				n := ok
				tc.change(&n)
				_, err := f.dir.CreateBy(context.Background(), f.admin, n, "test")
				wantErr(t, err, tc.want)
			})
		}
		list, err := f.dir.List(context.Background())
		if err != nil || len(list) != 0 {
			t.Errorf("got %d accounts (%v), want none", len(list), err)
		}
		if _, err := f.dir.CreateBy(context.Background(), f.admin, ok, "test"); err != nil {
			t.Fatal(err)
		}
		_, err = f.dir.CreateBy(context.Background(), f.admin, ok, "test")
		wantErr(t, err, ErrInvalid)
	})
}

func TestLockoutWithBackoff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.person(t, "nurse.park", RoleNurse)
		ctx := context.Background()
		bad := LoginRequest{Username: "nurse.park", Password: "not the password!"}
		good := LoginRequest{Username: "nurse.park", Password: passwordFor("nurse.park")}
		for lock, wantLen := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
			err := failTimes(f, bad, 5)
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
				t.Fatalf("lock %d: got %v after 5 failures, want a *LockedError", lock, err)
			}
			if got := le.Until.Sub(f.clock.Now()); got != wantLen {
				t.Errorf("lock %d: got %v, want %v", lock, got, wantLen)
			}
			// While locked even the right password is refused.
			_, _, err = f.dir.Login(ctx, good)
			wantErr(t, err, ErrLocked)
			f.clock.Advance(wantLen)
		}
		// After the lock, a success resets the count and the backoff.
		f.login(t, good)
		err := failTimes(f, bad, 5)
		var le *LockedError
		if !errors.As(err, &le) || le.Until.Sub(f.clock.Now()) != time.Minute {
			t.Fatalf("got %v, want a fresh one-minute lock after a success", err)
		}
		if n := len(f.events(t, "staff.lockout")); n != 4 {
			t.Errorf("got %d lockout events, want 4", n)
		}
	})
}

func TestLockoutCapAndWindow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.person(t, "pharm.yoon", RolePharmacist)
		bad := LoginRequest{Username: "pharm.yoon", Password: "not the password!"}
		// Failures spread wider than the window never lock.
		for range 8 {
			if err := failTimes(f, bad, 1); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("got %v, want ErrBadCredentials", err)
			}
			f.clock.Advance(4 * time.Minute)
		}
		// Repeated locks double up to the cap.
		var last time.Duration
		for range 10 {
			var le *LockedError
			if err := failTimes(f, bad, 5); !errors.As(err, &le) {
				t.Fatalf("got %v, want a lock", err)
			}
			last = le.Until.Sub(f.clock.Now())
			f.clock.Advance(last)
		}
		if last != f.dir.Policy.LockCap {
			t.Errorf("got lock %v after 10 lockouts, want the cap %v", last, f.dir.Policy.LockCap)
		}
	})
}

func TestLockoutSameForUnknownNames(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.person(t, "real.user", RoleNurse)
		for _, name := range []string{"real.user", "ghost.user"} {
			err := failTimes(f, LoginRequest{Username: name, Password: "not the password!"}, 5)
			var le *LockedError
			if !errors.As(err, &le) || le.Until.Sub(f.clock.Now()) != time.Minute {
				t.Errorf("%s: got %v, want a one-minute lock whether the account exists or not", name, err)
			}
		}
		for _, e := range f.events(t, "staff.login") {
			if strings.Contains(e.Reason+e.Resource+e.Actor, "ghost") {
				t.Errorf("an unknown user name reached the audit log: %+v", e)
			}
		}
	})
}

func failTimes(f *fixture, r LoginRequest, n int) error {
	var err error
	for range n {
		_, _, err = f.dir.Login(context.Background(), r)
	}
	return err
}

func TestInactiveAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		nurse := f.person(t, "nurse.cho", RoleNurse)
		_, token := f.login(t, LoginRequest{Username: "nurse.cho", Password: passwordFor("nurse.cho")})
		if err := f.dir.Disable(ctx, f.admin, nurse.ID, "left the hospital"); err != nil {
			t.Fatal(err)
		}
		_, err := f.dir.Sessions.Authenticate(ctx, token, "x")
		wantErr(t, err, ErrSessionRevoked)
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "nurse.cho", Password: passwordFor("nurse.cho")})
		wantErr(t, err, ErrInactive)
		if err := f.dir.Enable(ctx, f.admin, nurse.ID, "came back"); err != nil {
			t.Fatal(err)
		}
		f.login(t, LoginRequest{Username: "nurse.cho", Password: passwordFor("nurse.cho")})
		if n := len(f.events(t, "staff.disable")) + len(f.events(t, "staff.enable")); n != 2 {
			t.Errorf("got %d disable/enable events, want 2", n)
		}
	})
}

func TestPasswordChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.person(t, "admin.jung", RoleAdministrative)
		p, token := f.login(t, LoginRequest{Username: "admin.jung", Password: passwordFor("admin.jung")})
		err := f.dir.ChangePassword(ctx, p, "a wrong old password", "a brand new passphrase 42")
		wantErr(t, err, ErrBadCredentials)
		err = f.dir.ChangePassword(ctx, p, passwordFor("admin.jung"), "password12345")
		wantErr(t, err, ErrWeakPassword)
		if err := f.dir.ChangePassword(ctx, p, passwordFor("admin.jung"), "a brand new passphrase 42"); err != nil {
			t.Fatal(err)
		}
		_, err = f.dir.Sessions.Authenticate(ctx, token, "x")
		wantErr(t, err, ErrSessionRevoked)
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "admin.jung", Password: passwordFor("admin.jung")})
		wantErr(t, err, ErrBadCredentials)
		f.login(t, LoginRequest{Username: "admin.jung", Password: "a brand new passphrase 42"})
		text := f.auditText(t)
		for _, secret := range []string{passwordFor("admin.jung"), "a brand new passphrase 42", "$argon2id"} {
			if strings.Contains(text, secret) {
				t.Errorf("the audit log holds %q", secret)
			}
		}
	})
}

func TestAdministrationNeedsAnAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		victim := f.person(t, "nurse.han", RoleNurse)
		f.person(t, "dr.oh", RolePhysician)
		doc, _ := f.login(t, LoginRequest{Username: "dr.oh", Password: passwordFor("dr.oh")})
		forged := Principal{Staff: Staff{ID: "st_forged", Role: RoleITAdmin}}
		for _, by := range []Principal{doc, forged} {
			wantErr(t, f.dir.Disable(ctx, by, victim.ID, "no reason"), ErrForbidden)
			wantErr(t, f.dir.ResetPassword(ctx, by, victim.ID, "a fresh passphrase here", "no reason"), ErrForbidden)
			_, err := f.dir.CreateBy(ctx, by, NewStaff{Username: "x.y", DisplayName: "X", Role: RoleITAdmin, Password: passwordFor("x")}, "r")
			wantErr(t, err, ErrForbidden)
		}
		if n := len(f.events(t, "staff.disable")); n != 2 {
			t.Errorf("got %d audited refusals of staff.disable, want 2", n)
		}
		wantErr(t, f.dir.ResetPassword(ctx, f.admin, victim.ID, "a fresh passphrase here", ""), ErrInvalid)
	})
}
