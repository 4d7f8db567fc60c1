package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// Session timeouts (OWASP ASVS 3.3: idle and absolute).
const (
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultAbsoluteTimeout = 8 * time.Hour
)

// touchEvery is how stale a session's last-seen time may get before a
// request writes it again: most requests then cost one indexed read and no
// write, and a session may end up to this much before its idle timeout.
const touchEvery = 30 * time.Second

// Sessions are the server-side sessions of a Directory. A session is found
// by the SHA-256 of its bearer token; the token itself is never stored.
type Sessions struct {
	dir                          *Directory
	IdleTimeout, AbsoluteTimeout time.Duration
	// Now is the clock; nil means the directory's.
	Now func() time.Time
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return s.dir.now()
}

// Session is one signed-in session (no token).
type Session struct {
	ID       string    `json:"id"`
	StaffID  string    `json:"staff_id"`
	Username string    `json:"username"`
	Method   string    `json:"method"`
	MFA      bool      `json:"mfa"`
	Source   string    `json:"source,omitempty"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// Expires is the absolute end; the session also ends after the idle
	// timeout without use.
	Expires      time.Time `json:"expires"`
	Revoked      time.Time `json:"revoked,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// Tokens are "mss1_" and the unpadded base64url of 32 random bytes.
const (
	tokenPrefix = "mss1_"
	tokenLen    = len(tokenPrefix) + 43
)

func newToken() ([32]byte, string) {
	var raw [32]byte
	rand.Read(raw[:])
	return raw, tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
}

// ParseToken checks a bearer token's form and returns its 32 random bytes.
// It says nothing about whether the token is valid.
func ParseToken(token string) ([32]byte, error) {
	var raw [32]byte
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return raw, fmt.Errorf("%w: not a medsec session token", ErrInvalidToken)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token[len(tokenPrefix):])
	if err != nil || len(b) != len(raw) {
		return raw, fmt.Errorf("%w: not a medsec session token", ErrInvalidToken)
	}
	copy(raw[:], b)
	return raw, nil
}

func tokenHash(raw [32]byte) []byte {
	h := sha256.Sum256(raw[:])
	return h[:]
}

// open starts a session for a, clears its failed sign-ins, records the
// sign-in time and audits it, all in one transaction.
func (s *Sessions) open(ctx context.Context, a account, method string, mfa bool, source string) (Session, string, error) {
	raw, token := newToken()
	now := s.now()
	sess := Session{ID: "se_" + randomID(), StaffID: a.ID, Username: a.Username, Method: method, MFA: mfa,
		Source: source, Created: now, LastSeen: now, Expires: now.Add(s.AbsoluteTimeout)}
	if !a.ValidUntil.IsZero() && a.ValidUntil.Before(sess.Expires) {
		sess.Expires = a.ValidUntil // a time-boxed account's session ends with it
	}
	err := s.dir.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO staff_sessions (id, token_hash, staff_id, method, mfa, source, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, tokenHash(raw), a.ID, method, boolInt(mfa), source, now.UnixNano(), now.UnixNano(), sess.Expires.UnixNano())
		if err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE staff SET last_login_at = ? WHERE id = ?`, now.UnixNano(), a.ID); err != nil {
			return err
		}
		if err := clearGuard(ctx, tx, a.Username); err != nil {
			return err
		}
		p := a.principal(source, now, method, mfa)
		return s.dir.record(ctx, tx, p, "staff.login", "Session/"+sess.ID, audit.Success, "signed in with "+method)
	})
	if err != nil {
		return Session{}, "", err
	}
	return sess, token, nil
}

// Authenticate returns the principal of a bearer token: one indexed read
// (session, account and any acting role together) and, at most every 30
// seconds per session, a write of its last-seen time. The account is read
// fresh, so a changed role or department applies at once.
//
// Errors: ErrInvalidToken (malformed, forged or unknown), ErrSessionRevoked,
// ErrSessionExpired (idle or absolute timeout, or the account's validity
// ended), ErrMFARequired (the role now needs a second factor this session
// did not pass).
func (s *Sessions) Authenticate(ctx context.Context, token, source string) (Principal, error) {
	raw, err := ParseToken(token)
	if err != nil {
		return Principal{}, err
	}
	now := s.now()
	row := s.dir.db.QueryRow(ctx, `SELECT `+sessionColumns+`, `+principalColumns+` FROM staff_sessions ss JOIN staff s ON s.id = ss.staff_id WHERE ss.token_hash = ?`,
		now.UnixNano(), now.UnixNano(), tokenHash(raw))
	sess, a, err := scanSessionAccount(row)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: no such session", ErrInvalidToken)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("read session: %w", err)
	}
	if err := s.usable(sess, a, now); err != nil {
		return Principal{}, err
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		if _, err := s.dir.db.Exec(ctx, `UPDATE staff_sessions SET last_seen_at = ? WHERE id = ?`, now.UnixNano(), sess.ID); err != nil {
			return Principal{}, fmt.Errorf("touch session: %w", err)
		}
	}
	p := a.principal(truncate(source, maxSourceLen), sess.Created, sess.Method, sess.MFA)
	p.SessionID = sess.ID
	return p, nil
}

// usable says why sess cannot be used at now, or nil.
func (s *Sessions) usable(sess Session, a account, now time.Time) error {
	switch {
	case !sess.Revoked.IsZero():
		return fmt.Errorf("%w: %s", ErrSessionRevoked, sess.RevokeReason)
	case !now.Before(sess.Expires):
		return fmt.Errorf("%w: signed in at %s, sessions last at most %s", ErrSessionExpired, sess.Created.UTC().Format(time.RFC3339), s.AbsoluteTimeout)
	case now.Sub(sess.LastSeen) >= s.IdleTimeout:
		return fmt.Errorf("%w: unused for more than %s", ErrSessionExpired, s.IdleTimeout)
	}
	if err := a.activeAt(now); err != nil {
		return fmt.Errorf("%w: %w", ErrSessionExpired, err)
	}
	role := a.Role
	if a.actingRole != "" {
		role = a.actingRole
	}
	if s.dir.RequiresMFA(role) && !sess.MFA {
		return fmt.Errorf("%w: the role %s needs a second factor; sign in again with it", ErrMFARequired, role)
	}
	return nil
}

const sessionColumns = `ss.id, ss.staff_id, s.username, ss.method, ss.mfa, ss.source, ss.created_at, ss.last_seen_at, ss.expires_at, ss.revoked_at, ss.revoke_reason`

// principalColumns are the account columns a request needs (no secrets):
// fewer columns make the per-request read cheaper.
const principalColumns = `s.display_name, s.role, s.department, s.position, s.wards, s.disabled_at, s.valid_from, s.valid_until, s.totp_confirmed_at, ` + actingRoleSQL

func scanSessionAccount(row scanner) (Session, account, error) {
	var sa sessionAndAccount
	as, a := &sa.acc, &sa.acc.a
	err := row.Scan(append(sa.targets(), &a.DisplayName, &a.Role, &a.Department, &a.Position, &as.wards,
		&as.disabled, &as.from, &as.until, &as.totpConfirmed, &as.acting)...)
	if err != nil {
		return Session{}, account{}, err
	}
	a.ID, a.Username = sa.staffID, sa.username
	return sa.session(), as.account(), nil
}

// Revoke ends one session. Its owner may (sign-out) and so may an IT
// administrator or security officer.
func (s *Sessions) Revoke(ctx context.Context, by Principal, sessionID, reason string) error {
	sess, err := s.get(ctx, sessionID)
	if err != nil {
		return err
	}
	if err := maySeeSessions(by, sess.StaffID); err != nil {
		return s.dir.refuse(ctx, by, "session.revoke", "Session/"+sessionID, err)
	}
	return s.dir.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE staff_sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`,
			s.now().UnixNano(), truncate(reason, MaxReasonLen), sessionID)
		if err != nil {
			return fmt.Errorf("revoke session %s: %w", sessionID, err)
		}
		return s.dir.record(ctx, tx, by, "session.revoke", "Session/"+sessionID, audit.Success, reason)
	})
}

// Logout ends the session of token (the user signs out).
func (s *Sessions) Logout(ctx context.Context, token, source string) error {
	raw, err := ParseToken(token)
	if err != nil {
		return err
	}
	var id, staffID string
	err = s.dir.db.QueryRow(ctx, `SELECT id, staff_id FROM staff_sessions WHERE token_hash = ?`, tokenHash(raw)).Scan(&id, &staffID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no such session", ErrInvalidToken)
	}
	if err != nil {
		return fmt.Errorf("read session: %w", err)
	}
	by := Principal{Staff: Staff{ID: staffID}, Source: source, verified: true}
	return s.Revoke(ctx, by, id, "signed out")
}

// RevokeAll ends every session of a member of staff (a stolen device, a
// departure). The owner, an IT administrator or a security officer may.
func (s *Sessions) RevokeAll(ctx context.Context, by Principal, staffID, reason string) (int64, error) {
	if err := maySeeSessions(by, staffID); err != nil {
		return 0, s.dir.refuse(ctx, by, "session.revoke_all", staffResource(staffID), err)
	}
	var n int64
	err := s.dir.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if n, err = s.revokeAll(ctx, tx, staffID, reason); err != nil {
			return err
		}
		return s.dir.record(ctx, tx, by, "session.revoke_all", staffResource(staffID), audit.Success, fmt.Sprintf("%d sessions; %s", n, reason))
	})
	return n, err
}

func (s *Sessions) revokeAll(ctx context.Context, tx *store.Tx, staffID, reason string) (int64, error) {
	res, err := tx.Exec(ctx, `UPDATE staff_sessions SET revoked_at = ?, revoke_reason = ? WHERE staff_id = ? AND revoked_at IS NULL`,
		s.now().UnixNano(), truncate(reason, MaxReasonLen), staffID)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of %s: %w", staffID, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// List returns a member of staff's sessions that are still usable, newest
// first. The owner, an IT administrator or a security officer may list.
func (s *Sessions) List(ctx context.Context, by Principal, staffID string) ([]Session, error) {
	if err := maySeeSessions(by, staffID); err != nil {
		return nil, err
	}
	now := s.now()
	rows, err := s.dir.db.Query(ctx, `SELECT `+sessionColumns+` FROM staff_sessions ss JOIN staff s ON s.id = ss.staff_id
		WHERE ss.staff_id = ? AND ss.revoked_at IS NULL AND ss.expires_at > ? AND ss.last_seen_at > ? ORDER BY ss.created_at DESC`,
		staffID, now.UnixNano(), now.Add(-s.IdleTimeout).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var sa sessionAndAccount
		if err := rows.Scan(sa.targets()...); err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, sa.session())
	}
	return out, rows.Err()
}

func (s *Sessions) get(ctx context.Context, id string) (Session, error) {
	var sa sessionAndAccount
	err := s.dir.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM staff_sessions ss JOIN staff s ON s.id = ss.staff_id WHERE ss.id = ?`, id).
		Scan(sa.targets()...)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, fmt.Errorf("%w: no session %s", ErrInvalidToken, truncate(id, MaxFieldLen))
	}
	return sa.session(), err
}

func maySeeSessions(by Principal, staffID string) error {
	switch {
	case !by.Verified():
		return fmt.Errorf("%w: not authenticated", ErrForbidden)
	case by.ID == staffID, by.Role == RoleITAdmin, by.Role == RoleSecurityOfficer, by.Role == RoleSystem:
		return nil
	}
	return fmt.Errorf("%w: only the owner, an IT administrator or a security officer may manage these sessions", ErrForbidden)
}

// sessionAndAccount holds the scan targets of a session row followed by
// an account row.
type sessionAndAccount struct {
	id, staffID, username, method, source, reason string
	mfa, created, lastSeen, expires               int64
	revoked                                       *int64
	acc                                           accountScan
}

func (sa *sessionAndAccount) targets() []any {
	return []any{&sa.id, &sa.staffID, &sa.username, &sa.method, &sa.mfa, &sa.source, &sa.created, &sa.lastSeen, &sa.expires, &sa.revoked, &sa.reason}
}

func (sa *sessionAndAccount) session() Session {
	return Session{ID: sa.id, StaffID: sa.staffID, Username: sa.username, Method: sa.method, MFA: sa.mfa != 0,
		Source: sa.source, Created: time.Unix(0, sa.created), LastSeen: time.Unix(0, sa.lastSeen),
		Expires: time.Unix(0, sa.expires), Revoked: fromNanos(sa.revoked), RevokeReason: sa.reason}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
