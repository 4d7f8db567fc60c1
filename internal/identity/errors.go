package identity

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. The HTTP layer answers the sign-in and session ones
// (ErrBadCredentials, ErrLocked, ErrMFARequired, ErrBadSecondFactor,
// ErrInactive, ErrInvalidToken, ErrSessionExpired, ErrSessionRevoked) with
// 401, ErrForbidden with 403, ErrInvalid with 400, ErrUnknownStaff and
// ErrUnknownGrant with 404, ErrGrantState with 409.
var (
	// ErrBadCredentials means the user name or password is wrong. It never
	// says which, so it cannot be used to find accounts.
	ErrBadCredentials = errors.New("wrong user name or password")
	// ErrUnknownStaff means no such account exists (for admin commands).
	ErrUnknownStaff = errors.New("no such staff account")
	// ErrLocked means too many failed sign-ins: the *LockedError says when
	// to try again (HTTP 401 with Retry-After).
	ErrLocked = errors.New("account locked")
	// ErrMFARequired means the account must pass a second factor that was
	// not given, or has none enrolled yet; the message says which. Ask for
	// the one-time code, or have an administrator enrol one.
	ErrMFARequired = errors.New("second factor required")
	// ErrBadSecondFactor means the one-time code was wrong, expired or
	// already used. It counts as a failed sign-in.
	ErrBadSecondFactor = errors.New("wrong, expired or already used one-time code")
	// ErrInactive means the account is disabled or outside its validity
	// period (external maintainers). Only an administrator can change it.
	ErrInactive = errors.New("account not active")
	// ErrInvalidToken means the session token is malformed or unknown
	// (forged, or from another installation). Sign in again.
	ErrInvalidToken = errors.New("invalid session token")
	// ErrSessionExpired means the session passed its idle or absolute
	// timeout. Sign in again.
	ErrSessionExpired = errors.New("session expired")
	// ErrSessionRevoked means the session was ended (sign-out, password
	// change, account disabled, administrator). Sign in again.
	ErrSessionRevoked = errors.New("session revoked")
	// ErrForbidden means the acting principal may not make this change;
	// the message says who may. The refusal is audited.
	ErrForbidden = errors.New("not allowed")
	// ErrSelfApproval means an administrator tried to approve a grant they
	// requested or that is for themselves: a second administrator must.
	ErrSelfApproval = errors.New("a grant needs a second administrator's approval")
	// ErrInvalid means the input was refused before anything changed; the
	// message says what to fix.
	ErrInvalid = errors.New("invalid input")
	// ErrUnknownGrant means no grant has that id.
	ErrUnknownGrant = errors.New("no such grant")
	// ErrGrantState means the grant is not in a state that allows the
	// change (approving a revoked or expired grant, for example).
	ErrGrantState = errors.New("grant state does not allow this")
	// ErrNoAudit means the directory has no audit log attached; changes
	// and sign-ins are refused rather than made unaudited.
	ErrNoAudit = errors.New("identity: no audit log attached to the staff directory")
)

// LockedError says until when an account is locked. It matches ErrLocked.
type LockedError struct {
	Until time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("account locked after repeated failed sign-ins; try again after %s",
		e.Until.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// RetryAfter is how long the caller must wait from now.
func (e *LockedError) RetryAfter(now time.Time) time.Duration {
	if d := e.Until.Sub(now); d > 0 {
		return d
	}
	return 0
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
