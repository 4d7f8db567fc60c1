// Package identity is HIS authentication (the paper's "medical information
// system certification technology", locations 4 and 6): staff accounts with
// roles, department and position, argon2id password hashes, and the
// Principal — the proof of an authenticated subject that the one door to
// patient data demands before it decides anything.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

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

// Sentinel errors.
var (
	// ErrBadCredentials means the user name or password is wrong. It never
	// says which, so it cannot be used to find accounts.
	ErrBadCredentials = errors.New("wrong user name or password")
	// ErrUnknownStaff means no such account exists (for admin commands).
	ErrUnknownStaff = errors.New("no such staff account")
)

// Migrations create the staff table.
var Migrations = []store.Migration{
	{Component: "identity", Version: 1, Name: "staff", SQL: `CREATE TABLE staff (
		id TEXT PRIMARY KEY,
		username TEXT NOT NULL UNIQUE,
		display_name TEXT NOT NULL,
		role TEXT NOT NULL,
		department TEXT NOT NULL DEFAULT '',
		position TEXT NOT NULL DEFAULT '',
		wards TEXT NOT NULL DEFAULT '',
		password_hash TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		disabled_at BIGINT)`},
}

// Staff is a staff account (no secrets).
type Staff struct {
	ID          string
	Username    string
	DisplayName string
	Role        string
	Department  string
	Position    string
	Wards       []string
}

// Principal is an authenticated subject. Only this package makes one, so a
// function that takes a Principal knows authentication happened.
type Principal struct {
	Staff
	Source   string // network address or "cli"
	AuthTime time.Time
	verified bool
}

// Verified reports whether p came from an authentication.
func (p Principal) Verified() bool { return p.verified }

// System returns the principal of one of medsec's own jobs (ingestion,
// retention, the demo's set-up). It is audited like anyone else.
func System(job string) Principal {
	return Principal{Staff: Staff{ID: "system:" + job, Username: job, DisplayName: "medsec " + job, Role: RoleSystem},
		Source: "local", AuthTime: time.Now(), verified: true}
}

// Directory is the staff directory.
type Directory struct {
	db *store.DB
	// HashParams is the argon2id cost.
	HashParams HashParams
}

// NewDirectory returns the staff directory on db.
func NewDirectory(db *store.DB) *Directory { return &Directory{db: db, HashParams: DefaultHash} }

// NewStaff describes an account to create.
type NewStaff struct {
	Username, DisplayName, Role, Department, Position string
	Wards                                             []string
	Password                                          string
}

// Create adds an account. The password must pass the password policy.
func (d *Directory) Create(ctx context.Context, n NewStaff) (Staff, error) {
	if !validRole(n.Role) {
		return Staff{}, fmt.Errorf("create staff %q: unknown role %q (one of %s)", n.Username, n.Role, strings.Join(Roles, ", "))
	}
	if err := CheckPassword(n.Password, n.Username, n.DisplayName); err != nil {
		return Staff{}, fmt.Errorf("create staff %q: %w", n.Username, err)
	}
	s := Staff{ID: "st_" + randomID(), Username: n.Username, DisplayName: n.DisplayName, Role: n.Role,
		Department: n.Department, Position: n.Position, Wards: n.Wards}
	_, err := d.db.Exec(ctx, `INSERT INTO staff (id, username, display_name, role, department, position, wards, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Username, s.DisplayName, s.Role, s.Department, s.Position, strings.Join(s.Wards, ","), HashPassword(n.Password, d.HashParams), time.Now().UnixNano())
	if errors.Is(err, store.ErrConflict) {
		return Staff{}, fmt.Errorf("create staff: the user name %q is taken", n.Username)
	}
	if err != nil {
		return Staff{}, fmt.Errorf("create staff %q: %w", n.Username, err)
	}
	return s, nil
}

func validRole(r string) bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Authenticate checks a user name and password and returns the principal.
func (d *Directory) Authenticate(ctx context.Context, username, password, source string) (Principal, error) {
	s, hash, err := d.lookup(ctx, username)
	if errors.Is(err, ErrUnknownStaff) {
		// Spend the same time as a real check so timing does not reveal
		// which user names exist.
		VerifyPassword(password, dummyHash)
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	if !VerifyPassword(password, hash) {
		return Principal{}, ErrBadCredentials
	}
	return Principal{Staff: s, Source: source, AuthTime: time.Now(), verified: true}, nil
}

// Lookup returns the account with the user name.
func (d *Directory) Lookup(ctx context.Context, username string) (Staff, error) {
	s, _, err := d.lookup(ctx, username)
	return s, err
}

func (d *Directory) lookup(ctx context.Context, username string) (Staff, string, error) {
	var s Staff
	var wards, hash string
	var disabled *int64
	err := d.db.QueryRow(ctx, `SELECT id, username, display_name, role, department, position, wards, password_hash, disabled_at FROM staff WHERE username = ?`, username).
		Scan(&s.ID, &s.Username, &s.DisplayName, &s.Role, &s.Department, &s.Position, &wards, &hash, &disabled)
	if errors.Is(err, store.ErrNotFound) || (err == nil && disabled != nil) {
		return Staff{}, "", fmt.Errorf("%w: %s", ErrUnknownStaff, username)
	}
	if err != nil {
		return Staff{}, "", fmt.Errorf("look up staff %s: %w", username, err)
	}
	if wards != "" {
		s.Wards = strings.Split(wards, ",")
	}
	return s, hash, nil
}

// HashParams is an argon2id cost.
type HashParams struct {
	Time, MemoryKiB uint32
	Threads         uint8
}

// DefaultHash is OWASP's argon2id recommendation (m=19 MiB, t=2, p=1).
var DefaultHash = HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

var dummyHash = HashPassword("medsec-dummy-password", DefaultHash)

// HashPassword returns an encoded argon2id hash:
// $argon2id$v=19$m=...,t=...,p=...$salt$hash (the PHC string format).
func HashPassword(password string, p HashParams) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(sum))
}

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
