package identity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestSessionTimeouts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.person(t, "nurse.ko", RoleNurse)
		r := LoginRequest{Username: "nurse.ko", Password: passwordFor("nurse.ko")}

		// Idle: used every 14 minutes it lives; 15 minutes unused ends it.
		_, token := f.login(t, r)
		for range 4 {
			f.clock.Advance(14 * time.Minute)
			if _, err := f.dir.Sessions.Authenticate(ctx, token, "x"); err != nil {
				t.Fatalf("after 14 idle minutes: %v", err)
			}
		}
		f.clock.Advance(15 * time.Minute)
		_, err := f.dir.Sessions.Authenticate(ctx, token, "x")
		wantErr(t, err, ErrSessionExpired)

		// Absolute: 8 hours after sign-in, however busy.
		_, token = f.login(t, r)
		for range 8 * 6 {
			if _, err := f.dir.Sessions.Authenticate(ctx, token, "x"); err != nil {
				t.Fatalf("at %v: %v", f.clock.Now(), err)
			}
			f.clock.Advance(10 * time.Minute)
		}
		_, err = f.dir.Sessions.Authenticate(ctx, token, "x")
		wantErr(t, err, ErrSessionExpired)
		if !strings.Contains(err.Error(), "at most 8h") {
			t.Errorf("got %q, want it to name the absolute timeout", err)
		}
	})
}

func TestSessionRevocation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s := f.person(t, "dr.ryu", RolePhysician)
		other := f.person(t, "dr.lim", RolePhysician)
		r := LoginRequest{Username: "dr.ryu", Password: passwordFor("dr.ryu")}
		p1, t1 := f.login(t, r)
		_, t2 := f.login(t, r)
		_, t3 := f.login(t, r)
		list, err := f.dir.Sessions.List(ctx, p1, s.ID)
		if err != nil || len(list) != 3 {
			t.Fatalf("got %d sessions (%v), want 3", len(list), err)
		}
		po, _ := f.login(t, LoginRequest{Username: "dr.lim", Password: passwordFor("dr.lim")})
		wantErr(t, f.dir.Sessions.Revoke(ctx, po, p1.SessionID, "not mine"), ErrForbidden)
		_, err = f.dir.Sessions.List(ctx, po, s.ID)
		wantErr(t, err, ErrForbidden)

		if err := f.dir.Sessions.Revoke(ctx, p1, p1.SessionID, "done"); err != nil {
			t.Fatal(err)
		}
		_, err = f.dir.Sessions.Authenticate(ctx, t1, "x")
		wantErr(t, err, ErrSessionRevoked)
		if err := f.dir.Sessions.Logout(ctx, t2, "x"); err != nil {
			t.Fatal(err)
		}
		_, err = f.dir.Sessions.Authenticate(ctx, t2, "x")
		wantErr(t, err, ErrSessionRevoked)
		if _, err := f.dir.Sessions.Authenticate(ctx, t3, "x"); err != nil {
			t.Fatalf("the third session should live: %v", err)
		}
		n, err := f.dir.Sessions.RevokeAll(ctx, f.admin, s.ID, "stolen laptop")
		if err != nil || n != 1 {
			t.Fatalf("got %d revoked (%v), want 1", n, err)
		}
		_, err = f.dir.Sessions.Authenticate(ctx, t3, "x")
		wantErr(t, err, ErrSessionRevoked)
		if _, err := f.dir.Sessions.List(ctx, f.admin, other.ID); err != nil {
			t.Fatal(err)
		}
		if got := len(f.events(t, "session.revoke")); got != 3 {
			t.Errorf("got %d session.revoke events, want 3 (one refused, two done)", got)
		}
	})
}

func TestForgedTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.person(t, "nurse.woo", RoleNurse)
		_, token := f.login(t, LoginRequest{Username: "nurse.woo", Password: passwordFor("nurse.woo")})
		_, fresh := newToken()
		flipped := []byte(token)
		flipped[len(flipped)-3] ^= 1
		tests := map[string]string{
			"empty":           "",
			"unknown token":   fresh,
			"one bit changed": string(flipped),
			"no prefix":       strings.TrimPrefix(token, tokenPrefix),
			"bearer word":     "Bearer " + token,
			"sql injection":   tokenPrefix + "' OR '1'='1' --aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			"oversized":       token + strings.Repeat("A", 1<<16),
			"bad base64":      tokenPrefix + strings.Repeat("!", 43),
			"non-canonical":   tokenPrefix + strings.Repeat("A", 42) + "B",
		}
		for name, tok := range tests {
			t.Run(name, func(t *testing.T) {
				_, err := f.dir.Sessions.Authenticate(ctx, tok, "x")
				wantErr(t, err, ErrInvalidToken)
			})
		}
	})
}

func TestTimeBoxedAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s, err := f.dir.CreateBy(ctx, f.admin, NewStaff{Username: "vendor.lee", DisplayName: "PACS vendor", Role: RoleExternalMaintainer,
			Password: passwordFor("vendor.lee"), ValidFrom: f.clock.Now().Add(time.Hour), ValidUntil: f.clock.Now().Add(5 * time.Hour)}, "PACS upgrade")
		if err != nil {
			t.Fatal(err)
		}
		secret := f.enrol(t, s)
		r := func() LoginRequest {
			return LoginRequest{Username: "vendor.lee", Password: passwordFor("vendor.lee"), TOTP: f.code(t, secret)}
		}
		_, _, err = f.dir.Login(ctx, r())
		wantErr(t, err, ErrInactive)
		f.clock.Advance(4*time.Hour + 50*time.Minute)
		sess, token, err := f.dir.Login(ctx, r())
		if err != nil {
			t.Fatal(err)
		}
		if !sess.Expires.Equal(s.ValidUntil) {
			t.Errorf("got session end %v, want the account's end %v", sess.Expires, s.ValidUntil)
		}
		f.clock.Advance(10 * time.Minute)
		_, err = f.dir.Sessions.Authenticate(ctx, token, "x")
		wantErr(t, err, ErrSessionExpired)
		f.clock.Advance(totpPeriod * time.Second)
		_, _, err = f.dir.Login(ctx, r())
		wantErr(t, err, ErrInactive)
	})
}

func TestPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s := f.person(t, "nurse.prune", RoleNurse)
		r := LoginRequest{Username: "nurse.prune", Password: passwordFor("nurse.prune")}
		f.login(t, r)
		failTimes(f, LoginRequest{Username: "random.guess", Password: "not the password!"}, 2)
		f.clock.Advance(PruneAfter + 9*time.Hour)
		p, _ := f.login(t, r) // a live session survives
		n, err := f.dir.Prune(ctx)
		if err != nil || n != 2 {
			t.Fatalf("pruned %d (%v), want the old session and the idle failure count", n, err)
		}
		list, _ := f.dir.Sessions.List(ctx, p, s.ID)
		if len(list) != 1 || list[0].ID != p.SessionID {
			t.Errorf("got sessions %+v, want only the live one", list)
		}
	})
}
