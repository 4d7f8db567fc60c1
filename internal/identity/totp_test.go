package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestPrivilegedRoleNeedsSecondFactor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		admin := f.person(t, "it.park", RoleITAdmin)
		pw := passwordFor("it.park")
		// Not enrolled: refused with a reason that says what to do.
		_, _, err := f.dir.Login(ctx, LoginRequest{Username: "it.park", Password: pw})
		wantErr(t, err, ErrMFARequired)
		if !strings.Contains(err.Error(), "enrol") {
			t.Errorf("got %q, want a reason that says to enrol a second factor", err)
		}
		secret := f.enrol(t, admin)
		// Enrolled but no code.
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "it.park", Password: pw})
		wantErr(t, err, ErrMFARequired)
		// Wrong code.
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "it.park", Password: pw, TOTP: "000000"})
		if !errors.Is(err, ErrBadSecondFactor) && !strings.Contains(f.code(t, secret), "000000") {
			t.Fatalf("got %v, want ErrBadSecondFactor", err)
		}
		code := f.code(t, secret)
		p, _ := f.login(t, LoginRequest{Username: "it.park", Password: pw, TOTP: code})
		if !p.MFA || p.Method != "password+totp" {
			t.Errorf("got MFA %v method %q, want a second-factor session", p.MFA, p.Method)
		}
		// The same code again, in the same window: a replay.
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "it.park", Password: pw, TOTP: code})
		wantErr(t, err, ErrBadSecondFactor)
		if !strings.Contains(err.Error(), "already used") {
			t.Errorf("got %q, want it to say the code was already used", err)
		}
		// The next step's code works; a code of a step already passed does not.
		f.clock.Advance(totpPeriod * time.Second)
		f.login(t, LoginRequest{Username: "it.park", Password: pw, TOTP: f.code(t, secret)})
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "it.park", Password: pw, TOTP: code})
		wantErr(t, err, ErrBadSecondFactor)
	})
}

func TestTOTPSkew(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s := f.person(t, "sec.kang", RoleSecurityOfficer)
		secret := f.enrol(t, s)
		pw := passwordFor("sec.kang")
		tests := []struct {
			name   string
			offset time.Duration
			ok     bool
		}{
			// Each case advances the clock by 5 steps first, so codes of
			// earlier cases are never "replays" of later ones.
			{"one step early", -totpPeriod * time.Second, true},
			{"on time", 0, true},
			{"one step late", totpPeriod * time.Second, true},
			{"two steps early", -2 * totpPeriod * time.Second, false},
			{"two steps late", 2 * totpPeriod * time.Second, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f.clock.Advance(5 * totpPeriod * time.Second)
				f.clock.Advance(tc.offset)
				code := f.code(t, secret)
				f.clock.Advance(-tc.offset)
				_, _, err := f.dir.Login(ctx, LoginRequest{Username: "sec.kang", Password: pw, TOTP: code})
				if tc.ok && err != nil {
					t.Errorf("got %v, want a sign-in", err)
				}
				if !tc.ok && !errors.Is(err, ErrBadSecondFactor) {
					t.Errorf("got %v, want ErrBadSecondFactor", err)
				}
			})
		}
	})
}

func TestWrongCodesCountTowardsLockout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		s := f.person(t, "ext.vendor", RoleExternalMaintainer)
		secret := f.enrol(t, s)
		r := LoginRequest{Username: "ext.vendor", Password: passwordFor("ext.vendor"), TOTP: "12345x"}
		wantErr(t, failTimes(f, r, 5), ErrLocked)
		r.TOTP = f.code(t, secret)
		_, _, err := f.dir.Login(context.Background(), r)
		wantErr(t, err, ErrLocked)
	})
}

func TestSelfEnrolment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		s := f.person(t, "dr.seo", RolePhysician)
		other := f.person(t, "dr.min", RolePhysician)
		p, _ := f.login(t, LoginRequest{Username: "dr.seo", Password: passwordFor("dr.seo")})
		_, err := f.dir.EnrolTOTP(ctx, p, other.ID)
		wantErr(t, err, ErrForbidden)
		e, err := f.dir.EnrolTOTP(ctx, p, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.URL, "otpauth://totp/") || !strings.Contains(e.URL, "secret="+e.Secret) {
			t.Errorf("got URL %q, want an otpauth URL carrying the secret", e.URL)
		}
		wantErr(t, f.dir.ConfirmTOTP(ctx, p, s.ID, "999999x"), ErrBadSecondFactor)
		if err := f.dir.ConfirmTOTP(ctx, p, s.ID, f.code(t, e.Secret)); err != nil {
			t.Fatal(err)
		}
		// Confirmed: the user cannot replace it alone, and it is now needed.
		_, err = f.dir.EnrolTOTP(ctx, p, s.ID)
		wantErr(t, err, ErrForbidden)
		f.clock.Advance(totpPeriod * time.Second)
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "dr.seo", Password: passwordFor("dr.seo")})
		wantErr(t, err, ErrMFARequired)
		// The secret is sealed at rest: the row does not hold it.
		var sealed []byte
		if err := db.QueryRow(ctx, `SELECT totp_secret FROM staff WHERE id = ?`, s.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(sealed), e.Secret) || len(sealed) < 28 {
			t.Errorf("got a stored secret of %d bytes holding the plaintext, want it sealed", len(sealed))
		}
		if strings.Contains(f.auditText(t), e.Secret) {
			t.Error("the audit log holds the TOTP secret")
		}
		// A sealed secret copied to another account does not open there.
		if _, err := db.Exec(ctx, `UPDATE staff SET totp_secret = ?, totp_confirmed_at = 1 WHERE id = ?`, sealed, other.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "dr.min", Password: passwordFor("dr.min"), TOTP: f.code(t, e.Secret)})
		if err == nil || !strings.Contains(err.Error(), "does not open") {
			t.Errorf("got %v, want the copied secret refused", err)
		}
	})
}

func TestPhysicianMFAByConfig(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.person(t, "dr.bae", RolePhysician)
		r := LoginRequest{Username: "dr.bae", Password: passwordFor("dr.bae")}
		_, token := f.login(t, r)
		f.dir.Policy.PhysicianMFA = true
		_, _, err := f.dir.Login(context.Background(), r)
		wantErr(t, err, ErrMFARequired)
		// An existing password-only session no longer serves a physician.
		_, err = f.dir.Sessions.Authenticate(context.Background(), token, "x")
		wantErr(t, err, ErrMFARequired)
	})
}

func TestParseTOTPCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"123456", "123456", true},
		{" 123 456 ", "123456", true},
		{"123-456", "123456", true},
		{"12345", "", false},
		{"1234567", "", false},
		{"12345a", "", false},
		{"１２３４５６", "", false}, // full-width digits
		{"' OR 1=1", "", false},
		{strings.Repeat("1", 100), "", false},
	}
	for _, tc := range tests {
		got, err := ParseTOTPCode(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseTOTPCode(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestConcurrentReplayOfOneCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		s := f.person(t, "it.race", RoleITAdmin)
		secret := f.enrol(t, s)
		r := LoginRequest{Username: "it.race", Password: passwordFor("it.race"), TOTP: f.code(t, secret)}
		const n = 4
		errs := make(chan error, n)
		for range n {
			go func() {
				_, _, err := f.dir.Login(context.Background(), r)
				errs <- err
			}()
		}
		ok := 0
		for range n {
			err := <-errs
			if err == nil {
				ok++
			} else if !errors.Is(err, ErrBadSecondFactor) {
				t.Errorf("got %v, want success or ErrBadSecondFactor", err)
			}
		}
		if ok != 1 {
			t.Errorf("got %d sign-ins with one code, want exactly 1", ok)
		}
	})
}
