// Package identity is HIS authentication and authority management (the
// paper's "medical information system certification technology" and
// "authority management", locations 4 and 6): staff accounts with roles,
// department, position and wards; argon2id passwords under a NIST SP 800-63B
// policy; a TOTP second factor required of privileged roles; lockout with
// backoff; server-side sessions with idle and absolute timeouts; passkeys
// (WebAuthn) and single sign-on (OpenID Connect) for large hospitals; and
// time-boxed grants with two-person approval and an access-review report.
//
// Its product is the Principal — the proof of an authenticated subject that
// the one door to patient data demands before it decides anything. Only this
// package can make a verified one. Every change to an account, a session or
// a grant, and every failed sign-in, is written to the audit log in the same
// transaction as the change.
package identity

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Roles of hospital staff.
const (
	RolePhysician          = "physician"
	RoleNurse              = "nurse"
	RolePharmacist         = "pharmacist"
	RoleAdministrative     = "administrative"
	RoleITAdmin            = "it_admin"
	RoleSecurityOfficer    = "security_officer"
	RoleResearcher         = "researcher"
	RoleExternalMaintainer = "external_maintainer"
	// RoleSystem is medsec's own jobs (retention, ingestion); never a login.
	RoleSystem = "system"
)

// Roles lists the staff roles a person can hold.
var Roles = []string{RolePhysician, RoleNurse, RolePharmacist, RoleAdministrative, RoleITAdmin,
	RoleSecurityOfficer, RoleResearcher, RoleExternalMaintainer}

// PrivilegedRoles must sign in with a second factor, and a grant of one
// needs a second administrator's approval.
var PrivilegedRoles = []string{RoleITAdmin, RoleSecurityOfficer, RoleExternalMaintainer}

// Staff is a staff account (no secrets).
type Staff struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Role        string   `json:"role"`
	Department  string   `json:"department,omitempty"`
	Position    string   `json:"position,omitempty"`
	Wards       []string `json:"wards,omitempty"`
	// Disabled accounts cannot sign in; their sessions are revoked.
	Disabled bool `json:"disabled,omitempty"`
	// ValidFrom and ValidUntil time-box an account (external maintainers);
	// zero means unbounded.
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// TOTP is true once a second factor is enrolled and confirmed.
	TOTP      bool      `json:"totp,omitempty"`
	SSO       bool      `json:"sso,omitempty"`
	LastLogin time.Time `json:"last_login,omitzero"`
	Created   time.Time `json:"created,omitzero"`
}

// Principal is an authenticated subject. Only this package makes one, so a
// function that takes a Principal knows authentication happened.
type Principal struct {
	Staff
	Source   string // network address or "cli"
	AuthTime time.Time
	// MFA is true when the sign-in passed a second factor (TOTP, a
	// user-verifying passkey, or an identity provider that said so).
	MFA bool
	// SessionID names the server-side session ("" outside a session).
	SessionID string
	// Method is how the subject signed in: password, password+totp,
	// passkey, sso, or system.
	Method string
	// RoleGrant is the id of the approved role grant that sets Role now
	// ("" when Role is the account's own).
	RoleGrant string
	verified  bool
}

// Verified reports whether p came from an authentication.
func (p Principal) Verified() bool { return p.verified }

// System returns the principal of one of medsec's own jobs (ingestion,
// retention, the demo's set-up). It is audited like anyone else.
func System(job string) Principal {
	return Principal{Staff: Staff{ID: "system:" + job, Username: job, DisplayName: "medsec " + job, Role: RoleSystem},
		Source: "local", AuthTime: time.Now(), Method: "system", verified: true}
}

// Directory is the staff directory: accounts, sign-in, second factors,
// sessions and grants.
type Directory struct {
	db *store.DB
	// HashParams is the argon2id cost.
	HashParams HashParams
	// Audit receives every change and sign-in. Without it, Create and
	// Authenticate still work (set-up tools) but everything else refuses
	// with ErrNoAudit.
	Audit *audit.Log
	// Keys seals TOTP secrets (system key "staff-secrets").
	Keys *keys.Keyring
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
	// Policy holds the lockout, second-factor and grant rules.
	Policy Policy
	// Sessions are the server-side sessions of this directory.
	Sessions *Sessions

	secretMu sync.Mutex
	secret   cipher.AEAD

	dummyOnce sync.Once
	dummy     string
}

// Policy is the directory's configurable rules.
type Policy struct {
	// PhysicianMFA makes physicians sign in with a second factor too.
	PhysicianMFA bool
	// MaxFailures failed sign-ins within FailureWindow lock the user name
	// for LockBase, doubling with each lockout up to LockCap.
	MaxFailures   int
	FailureWindow time.Duration
	LockBase      time.Duration
	LockCap       time.Duration
	// TOTPIssuer names the hospital in authenticator apps.
	TOTPIssuer string
	// MaxGrant caps how long a time-boxed grant may run.
	MaxGrant time.Duration
}

// DefaultPolicy is medsec's default: 5 failures in 15 minutes lock for 1,
// 2, 4 … minutes up to an hour; grants run at most a year.
var DefaultPolicy = Policy{MaxFailures: 5, FailureWindow: 15 * time.Minute, LockBase: time.Minute,
	LockCap: time.Hour, TOTPIssuer: "medsec", MaxGrant: 365 * 24 * time.Hour}

// NewDirectory returns the staff directory on db. Attach the audit log and
// keyring (Audit, Keys) before serving sign-ins.
func NewDirectory(db *store.DB) *Directory {
	d := &Directory{db: db, HashParams: DefaultHash, Policy: DefaultPolicy}
	d.Sessions = &Sessions{dir: d, IdleTimeout: DefaultIdleTimeout, AbsoluteTimeout: DefaultAbsoluteTimeout}
	return d
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// RequiresMFA reports whether role must sign in with a second factor.
func (d *Directory) RequiresMFA(role string) bool {
	return slices.Contains(PrivilegedRoles, role) || (role == RolePhysician && d.Policy.PhysicianMFA)
}

// Input caps: everything a person types is bounded before it is hashed,
// stored or looked up.
const (
	MaxUsernameLen = 64
	MaxNameLen     = 128
	MaxFieldLen    = 64
	MaxWards       = 32
	MaxReasonLen   = 500
)

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]*$`)

// CheckUsername says whether name can be a user name: 1–64 characters of
// lower-case letters, digits and . _ @ -, starting with a letter or digit.
func CheckUsername(name string) error {
	if name == "" || len(name) > MaxUsernameLen || !usernamePattern.MatchString(name) {
		return invalidf("user name %q: use 1-%d lower-case letters, digits and . _ @ - (starting with a letter or digit)",
			truncate(name, MaxUsernameLen), MaxUsernameLen)
	}
	return nil
}

// NewStaff describes an account to create.
type NewStaff struct {
	Username, DisplayName, Role, Department, Position string
	Wards                                             []string
	Password                                          string
	// ValidFrom and ValidUntil time-box the account; external maintainers
	// must have a ValidUntil.
	ValidFrom, ValidUntil time.Time
}

func (n NewStaff) check(now time.Time) error {
	if err := CheckUsername(n.Username); err != nil {
		return err
	}
	if !validRole(n.Role) {
		return invalidf("unknown role %q (one of %s)", truncate(n.Role, MaxFieldLen), strings.Join(Roles, ", "))
	}
	if err := checkProfile(Profile{n.DisplayName, n.Department, n.Position, n.Wards}); err != nil {
		return err
	}
	return checkValidity(n.Role, n.ValidFrom, n.ValidUntil, now)
}

func checkValidity(role string, from, until time.Time, now time.Time) error {
	switch {
	case role == RoleExternalMaintainer && until.IsZero():
		return invalidf("an external maintainer's account must end (set its validity end)")
	case !until.IsZero() && !from.IsZero() && !until.After(from):
		return invalidf("the validity period ends before it starts")
	case !until.IsZero() && !until.After(now):
		return invalidf("the validity period has already ended")
	}
	return nil
}

// Create adds an account. The password must pass the password policy.
// When the directory has an audit log, the creation is audited as done by
// the system; administrators use CreateBy.
func (d *Directory) Create(ctx context.Context, n NewStaff) (Staff, error) {
	by := System("identity")
	if d.Audit == nil {
		return d.create(ctx, nil, by, n, "")
	}
	return d.CreateBy(ctx, by, n, "account created by medsec")
}

// CreateBy adds an account on an administrator's behalf, audited.
func (d *Directory) CreateBy(ctx context.Context, by Principal, n NewStaff, reason string) (Staff, error) {
	if err := d.mayAdminister(by); err != nil {
		return Staff{}, d.refuse(ctx, by, "staff.create", "", err)
	}
	var s Staff
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if s, err = d.create(ctx, tx, by, n, reason); err != nil {
			return err
		}
		return d.record(ctx, tx, by, "staff.create", staffResource(s.ID), audit.Success,
			joinReason(fmt.Sprintf("account %s with role %s", s.Username, s.Role), reason))
	})
	return s, err
}

func (d *Directory) create(ctx context.Context, q store.Querier, by Principal, n NewStaff, reason string) (Staff, error) {
	now := d.now()
	if err := n.check(now); err != nil {
		return Staff{}, fmt.Errorf("create staff: %w", err)
	}
	if err := CheckPassword(n.Password, n.Username, n.DisplayName); err != nil {
		return Staff{}, fmt.Errorf("create staff %q: %w", n.Username, err)
	}
	if q == nil {
		q = d.db
	}
	s := Staff{ID: "st_" + randomID(), Username: n.Username, DisplayName: n.DisplayName, Role: n.Role,
		Department: n.Department, Position: n.Position, Wards: n.Wards, ValidFrom: n.ValidFrom, ValidUntil: n.ValidUntil, Created: now}
	_, err := q.Exec(ctx, `INSERT INTO staff (id, username, display_name, role, department, position, wards, password_hash, created_at, updated_at, valid_from, valid_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Username, s.DisplayName, s.Role, s.Department, s.Position, strings.Join(s.Wards, ","),
		HashPassword(n.Password, d.HashParams), now.UnixNano(), now.UnixNano(), nanosOrNil(n.ValidFrom), nanosOrNil(n.ValidUntil))
	if errors.Is(err, store.ErrConflict) {
		return Staff{}, fmt.Errorf("create staff: %w: the user name %q is taken", ErrInvalid, n.Username)
	}
	if err != nil {
		return Staff{}, fmt.Errorf("create staff %q: %w", n.Username, err)
	}
	return s, nil
}

func validRole(r string) bool { return slices.Contains(Roles, r) }

// Authenticate checks a user name and password and returns the principal,
// without a session, lockout or second factor: it is for in-process tools
// (the demo, set-up). People sign in through Login.
func (d *Directory) Authenticate(ctx context.Context, username, password, source string) (Principal, error) {
	a, err := d.accountByName(ctx, d.db, username)
	if errors.Is(err, ErrUnknownStaff) || (err == nil && a.Disabled) {
		// Spend the same time as a real check so timing does not reveal
		// which user names exist.
		VerifyPassword(password, d.dummyHash())
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	if !VerifyPassword(password, a.hash) {
		return Principal{}, ErrBadCredentials
	}
	now := d.now()
	if err := a.activeAt(now); err != nil {
		return Principal{}, err
	}
	return a.principal(source, now, "password", false), nil
}

// Lookup returns the active account with the user name.
func (d *Directory) Lookup(ctx context.Context, username string) (Staff, error) {
	a, err := d.accountByName(ctx, d.db, username)
	if err == nil && a.Disabled {
		err = fmt.Errorf("%w: %s", ErrUnknownStaff, truncate(username, MaxUsernameLen))
	}
	return a.Staff, err
}

// Get returns the account with the id, disabled or not.
func (d *Directory) Get(ctx context.Context, id string) (Staff, error) {
	a, err := d.accountByID(ctx, d.db, id)
	return a.Staff, err
}

// account is a staff row with its secrets, for this package only.
type account struct {
	Staff
	hash       string
	totpSecret []byte
	totpStep   int64
	handle     []byte
	// actingRole/actingGrant: an approved role grant in force now.
	actingRole, actingGrant string
}

func (a account) principal(source string, now time.Time, method string, mfa bool) Principal {
	p := Principal{Staff: a.Staff, Source: source, AuthTime: now, Method: method, MFA: mfa, verified: true}
	if a.actingRole != "" {
		p.Role, p.RoleGrant = a.actingRole, a.actingGrant
	}
	return p
}

// activeAt says why the account cannot be used at now, or nil.
func (a account) activeAt(now time.Time) error {
	switch {
	case a.Disabled:
		return fmt.Errorf("%w: the account is disabled", ErrInactive)
	case !a.ValidFrom.IsZero() && now.Before(a.ValidFrom):
		return fmt.Errorf("%w: the account is valid from %s", ErrInactive, a.ValidFrom.UTC().Format(time.DateTime))
	case !a.ValidUntil.IsZero() && !now.Before(a.ValidUntil):
		return fmt.Errorf("%w: the account ended on %s", ErrInactive, a.ValidUntil.UTC().Format(time.DateTime))
	}
	return nil
}

// actingRoleSQL picks the newest approved role grant in force at the two
// '?' (both now): it sets the principal's role for its period.
const actingRoleSQL = `(SELECT g.what || ' ' || g.id FROM staff_grants g WHERE g.staff_id = s.id AND g.kind = 'role' AND g.state = 'approved' AND g.starts_at <= ? AND (g.ends_at IS NULL OR g.ends_at > ?) ORDER BY g.starts_at DESC, g.requested_at DESC LIMIT 1)`

const accountColumns = `s.id, s.username, s.display_name, s.role, s.department, s.position, s.wards, s.password_hash,
	s.created_at, s.disabled_at, s.valid_from, s.valid_until, s.last_login_at, s.totp_secret, s.totp_confirmed_at,
	s.totp_last_step, s.webauthn_handle, s.sso_subject, ` + actingRoleSQL

func (d *Directory) accountByName(ctx context.Context, q store.Querier, username string) (account, error) {
	if len(username) > MaxUsernameLen {
		return account{}, fmt.Errorf("%w: %s", ErrUnknownStaff, truncate(username, MaxUsernameLen))
	}
	return d.accountWhere(ctx, q, "s.username = ?", username)
}

func (d *Directory) accountByID(ctx context.Context, q store.Querier, id string) (account, error) {
	if len(id) > MaxFieldLen {
		return account{}, fmt.Errorf("%w: %s", ErrUnknownStaff, truncate(id, MaxFieldLen))
	}
	return d.accountWhere(ctx, q, "s.id = ?", id)
}

func (d *Directory) accountWhere(ctx context.Context, q store.Querier, where string, args ...any) (account, error) {
	now := d.now().UnixNano()
	row := q.QueryRow(ctx, `SELECT `+accountColumns+` FROM staff s WHERE `+where, append([]any{now, now}, args...)...)
	a, err := scanAccount(row)
	if errors.Is(err, store.ErrNotFound) {
		return account{}, fmt.Errorf("%w: %v", ErrUnknownStaff, args[0])
	}
	if err != nil {
		return account{}, fmt.Errorf("look up staff %v: %w", args[0], err)
	}
	return a, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanAccount(row scanner) (account, error) {
	var as accountScan
	if err := row.Scan(as.targets()...); err != nil {
		return account{}, err
	}
	return as.account(), nil
}

// accountScan holds the scan targets of accountColumns.
type accountScan struct {
	a                                               account
	wards                                           string
	created                                         int64
	disabled, from, until, lastLogin, totpConfirmed *int64
	ssoSubject, acting                              *string
}

func (as *accountScan) targets() []any {
	a := &as.a
	return []any{&a.ID, &a.Username, &a.DisplayName, &a.Role, &a.Department, &a.Position, &as.wards, &a.hash,
		&as.created, &as.disabled, &as.from, &as.until, &as.lastLogin, &a.totpSecret, &as.totpConfirmed, &a.totpStep,
		&a.handle, &as.ssoSubject, &as.acting}
}

func (as *accountScan) account() account {
	a := as.a
	a.Wards = splitList(as.wards)
	a.Created, a.ValidFrom, a.ValidUntil, a.LastLogin = time.Unix(0, as.created), fromNanos(as.from), fromNanos(as.until), fromNanos(as.lastLogin)
	a.Disabled, a.TOTP, a.SSO = as.disabled != nil, as.totpConfirmed != nil, as.ssoSubject != nil
	if as.acting != nil {
		a.actingRole, a.actingGrant, _ = strings.Cut(*as.acting, " ")
	}
	return a
}

// HashParams is an argon2id cost.
type HashParams struct {
	Time, MemoryKiB uint32
	Threads         uint8
}

// DefaultHash is OWASP's argon2id recommendation (m=19 MiB, t=2, p=1).
var DefaultHash = HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

// dummyHash is checked when a user name does not exist, so the answer
// takes as long as for one that does. It is made on first use, at the
// directory's cost, rather than when the program starts.
func (d *Directory) dummyHash() string {
	d.dummyOnce.Do(func() { d.dummy = HashPassword("medsec-dummy-password", d.HashParams) })
	return d.dummy
}

// HashPassword returns an encoded argon2id hash:
// $argon2id$v=19$m=...,t=...,p=...$salt$hash (the PHC string format).
func HashPassword(password string, p HashParams) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(sum))
}

// maxHashCost bounds the parameters VerifyPassword accepts from a stored
// hash, so a damaged row cannot make a sign-in allocate gigabytes.
const maxHashMemoryKiB, maxHashTime = 1 << 20, 16

// VerifyPassword checks password against an encoded hash in constant time.
func VerifyPassword(password, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return false
	}
	if p.MemoryKiB > maxHashMemoryKiB || p.Time > maxHashTime || p.Time == 0 || p.Threads == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func randomID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.ToLower(base32NoPad.EncodeToString(b))
}

func nanosOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n)
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// truncate shortens s for an error message without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
