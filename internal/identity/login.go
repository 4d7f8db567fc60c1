package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// LoginRequest is one password sign-in.
type LoginRequest struct {
	Username, Password string
	// TOTP is the 6-digit code from the authenticator app ("" if none).
	TOTP string
	// Source is the client's network address (for the audit log).
	Source string
}

// maxPasswordBytes caps what is hashed: MaxPasswordLen characters of at
// most four bytes each. Longer input is refused before any hashing.
const maxPasswordBytes = 4 * MaxPasswordLen

const maxSourceLen = 128

// Login signs a member of staff in with user name, password and, where the
// account needs it, a one-time code, and opens a server-side session. It
// returns the session and its bearer token (shown once; only its SHA-256 is
// stored).
//
// Errors: ErrBadCredentials (wrong or unknown user name or password — never
// which), *LockedError (ErrLocked: too many failures, says when to retry),
// ErrMFARequired (a privileged role without a code or without an enrolled
// second factor), ErrBadSecondFactor (wrong or replayed code), ErrInactive
// (disabled or outside its validity period). Failures, lockouts and
// successes are audited; a success clears the failure count.
func (d *Directory) Login(ctx context.Context, r LoginRequest) (Session, string, error) {
	if d.Audit == nil {
		return Session{}, "", ErrNoAudit
	}
	r.Source = truncate(r.Source, maxSourceLen)
	a, mfa, err := d.checkLogin(ctx, r)
	if err != nil {
		return Session{}, "", err
	}
	method := "password"
	if mfa {
		method = "password+totp"
	}
	return d.Sessions.open(ctx, a, method, mfa, r.Source)
}

func (d *Directory) checkLogin(ctx context.Context, r LoginRequest) (account, bool, error) {
	if len(r.Username) > MaxUsernameLen || len(r.Password) > maxPasswordBytes || len(r.TOTP) > maxCodeInput {
		return account{}, false, ErrBadCredentials
	}
	now := d.now()
	if err := d.checkNotLocked(ctx, r.Username, r.Source, now); err != nil {
		return account{}, false, err
	}
	a, err := d.accountByName(ctx, d.db, r.Username)
	if errors.Is(err, ErrUnknownStaff) {
		VerifyPassword(r.Password, d.dummyHash()) // same time as a real check
		return account{}, false, d.failSignIn(ctx, r.Username, nil, r.Source, "unknown user name or wrong password", ErrBadCredentials)
	}
	if err != nil {
		return account{}, false, err
	}
	if !VerifyPassword(r.Password, a.hash) {
		return account{}, false, d.failSignIn(ctx, r.Username, &a, r.Source, "wrong password", ErrBadCredentials)
	}
	if err := a.activeAt(now); err != nil {
		return account{}, false, d.refuse(ctx, signInActor(&a, r.Source), "staff.login", staffResource(a.ID), err)
	}
	mfa, err := d.secondFactor(ctx, a, r, now)
	return a, mfa, err
}

// secondFactor checks the one-time code when the account needs one (its
// role does, or it has a confirmed factor) or when one was given.
func (d *Directory) secondFactor(ctx context.Context, a account, r LoginRequest, now time.Time) (bool, error) {
	role := a.Role
	if a.actingRole != "" {
		role = a.actingRole
	}
	needed := d.RequiresMFA(role) || a.TOTP
	by := signInActor(&a, r.Source)
	switch {
	case len(a.totpSecret) == 0 && needed:
		return false, d.refuse(ctx, by, "staff.login", staffResource(a.ID), fmt.Errorf(
			"%w: the role %s must sign in with a one-time code and none is enrolled; ask an IT administrator to enrol one", ErrMFARequired, role))
	case len(a.totpSecret) == 0 || (r.TOTP == "" && !needed):
		return false, nil
	case r.TOTP == "":
		return false, d.refuse(ctx, by, "staff.login", staffResource(a.ID), fmt.Errorf(
			"%w: enter the 6-digit code from your authenticator app", ErrMFARequired))
	}
	if err := d.checkTOTP(ctx, a, r.TOTP, now, r.Source); err != nil {
		return false, d.failSignIn(ctx, r.Username, &a, r.Source, "wrong one-time code", err)
	}
	return true, nil
}

// signInActor is who an audit event of a sign-in names: the account when
// the user name exists, else nobody (an unknown name may be a mistyped
// password, which must not reach the log).
func signInActor(a *account, source string) Principal {
	if a == nil {
		return Principal{Source: source}
	}
	return Principal{Staff: Staff{ID: a.ID, Role: a.Role}, Source: source}
}

func resourceOf(a *account) string {
	if a == nil {
		return ""
	}
	return staffResource(a.ID)
}

// failSignIn counts a failure against the user name, audits it (and the
// lockout it may cause) and returns cause, or a *LockedError when this
// failure locked the name.
func (d *Directory) failSignIn(ctx context.Context, username string, a *account, source, reason string, cause error) error {
	now := d.now()
	by := signInActor(a, source)
	var until time.Time
	err := d.withGuard(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if until, err = d.registerFailure(ctx, tx, guardKey(username), now); err != nil {
			return err
		}
		events := []audit.Event{d.event(by, "staff.login", resourceOf(a), audit.Denied, reason)}
		if !until.IsZero() {
			events = append(events, d.event(by, "staff.lockout", resourceOf(a), audit.Denied, fmt.Sprintf(
				"%d failed sign-ins within %s; locked until %s", d.Policy.MaxFailures, d.Policy.FailureWindow, until.UTC().Format(time.RFC3339))))
		}
		_, err = d.Audit.AppendTx(ctx, tx, events...)
		return err
	})
	if err != nil {
		return fmt.Errorf("record failed sign-in: %w", err)
	}
	if !until.IsZero() {
		return &LockedError{Until: until}
	}
	return cause
}

// checkNotLocked refuses (and audits) a sign-in while the name is locked,
// without looking at the password.
func (d *Directory) checkNotLocked(ctx context.Context, username, source string, now time.Time) error {
	g, err := d.loadGuard(ctx, d.db, guardKey(username))
	if err != nil {
		return err
	}
	if !now.Before(g.lockedUntil) {
		return nil
	}
	lerr := &LockedError{Until: g.lockedUntil}
	a, aerr := d.accountByName(ctx, d.db, username)
	var ap *account
	if aerr == nil {
		ap = &a
	}
	return d.refuse(ctx, signInActor(ap, source), "staff.login", resourceOf(ap), lerr)
}

func subtleEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
