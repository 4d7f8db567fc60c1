// Package workstation is the hospital server's side of the legacy
// workstation guard (package guard/agent): a certificate authority of the
// hospital's own that issues each PACS viewer or modality PC a client
// certificate (`medsec guard enroll NAME`), a registry of the enrolled
// workstations with revocation, and the mutual-TLS endpoint where their
// agents report. Every alert a workstation reports lands in the security
// officer's inbox and in the audit log.
//
// It serves the "medical environment preventative technology" of the
// paper for location 5 (PACS) and the timeworn systems at locations 3, 4
// and 6.
package workstation

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Migrations create the registry of enrolled workstations.
var Migrations = []store.Migration{
	{Component: "workstations", Version: 1, Name: "enrolled workstations", SQL: `CREATE TABLE workstations (
		name TEXT PRIMARY KEY,
		serial TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		enrolled_at BIGINT NOT NULL,
		enrolled_by TEXT NOT NULL,
		expires_at BIGINT NOT NULL,
		revoked_at BIGINT,
		revoked_by TEXT NOT NULL DEFAULT '',
		last_seen BIGINT)`},
}

// Errors callers branch on.
var (
	// ErrInvalid: a bad workstation name or validity; the message says
	// what to fix.
	ErrInvalid = errors.New("invalid workstation request")
	// ErrNotFound: no workstation of that name is enrolled.
	ErrNotFound = errors.New("no such workstation")
	// ErrNotOfficer: a workstation's full report (paths included) is
	// opened only by a security officer signed in with a second factor.
	// HTTP 403. The refusal is audited.
	ErrNotOfficer = errors.New("only a security officer signed in with a second factor may open a workstation's report")
)

// caSecret names the system secret the CA key is derived from.
const caSecret = "workstation-ca"

// DefaultValidity is how long an enrolled certificate is valid.
const DefaultValidity = 365 * 24 * time.Hour

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Config assembles the registry from an installation's parts.
type Config struct {
	DB     *store.DB
	Keys   *keys.Keyring
	Audit  *audit.Log
	Alerts *alerts.Inbox
	// Protected names the directories workstations protect (the agents'
	// "protect:" lists) by labels that identify no one. A file change
	// under one is reported in the inbox and the audit log as the label
	// and a keyed hash of the path, never the path: PACS export folders
	// are often named after patients. Changes elsewhere say
	// UnlistedRoot.
	Protected []ProtectedRoot
	Now       func() time.Time
}

// ProtectedRoot is one protected directory and its label.
type ProtectedRoot struct {
	// Label is what the officer sees, e.g. "pacs-export": 1-32
	// lower-case letters, digits and '-'.
	Label string `yaml:"label" json:"label"`
	// Path is the directory as the agent reports it (either separator).
	Path string `yaml:"path" json:"path"`
}

// Registry is the workstation CA, the list of enrolled workstations and
// the alert endpoint.
type Registry struct {
	cfg    Config
	caKey  ed25519.PrivateKey
	caCert *x509.Certificate
	caPEM  []byte
	roots  *x509.CertPool
	// pathKey keys the hashes that stand for paths; reports seals the
	// full reports kept in the alerts.
	pathKey []byte
	reports *keys.DataKey
}

// Open prepares the registry's table (a no-op once applied) and the CA.
// The CA's Ed25519 key is derived from a system secret kept wrapped by the
// key-encryption key, so it is never on disk and every replica of the
// server has the same one; its certificate is derived from the key alone.
func Open(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Audit == nil || cfg.Alerts == nil {
		return nil, errors.New("workstation: the registry needs a database, keys, the audit log and the alert inbox")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.DB.Migrate(ctx, Migrations); err != nil {
		return nil, fmt.Errorf("prepare workstation registry: %w", err)
	}
	if err := checkRoots(cfg.Protected); err != nil {
		return nil, err
	}
	seed, err := cfg.Keys.SystemKey(ctx, caSecret)
	if err != nil {
		return nil, err
	}
	r := &Registry{cfg: cfg, caKey: ed25519.NewKeyFromSeed(seed[:ed25519.SeedSize])}
	if r.pathKey, err = cfg.Keys.SystemKey(ctx, pathSecret); err != nil {
		return nil, err
	}
	if r.reports, err = reportKey(ctx, cfg); err != nil {
		return nil, err
	}
	if err := r.makeCA(); err != nil {
		return nil, err
	}
	return r, nil
}

// makeCA builds the CA certificate deterministically: Ed25519 signatures
// need no randomness, and serial and dates are fixed.
func (r *Registry) makeCA() error {
	pub := r.caKey.Public().(ed25519.PublicKey)
	id := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(id[:16]),
		Subject:               pkix.Name{CommonName: "medsec workstation CA", Organization: []string{"medsec"}},
		NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2075, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          id[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, r.caKey)
	if err != nil {
		return fmt.Errorf("workstation CA: %w", err)
	}
	if r.caCert, err = x509.ParseCertificate(der); err != nil {
		return fmt.Errorf("workstation CA: %w", err)
	}
	r.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	r.roots = x509.NewCertPool()
	r.roots.AddCert(r.caCert)
	return nil
}

// CAPEM is the CA certificate, for whoever checks a workstation's
// certificate by hand.
func (r *Registry) CAPEM() []byte { return r.caPEM }

// Enrollment is what a workstation needs to report: its certificate and
// key. Hand the key over once, by hand, and never keep a copy.
type Enrollment struct {
	Name        string
	Serial      string
	Fingerprint string // SHA-256 of the certificate
	Expires     time.Time
	CertPEM     []byte
	KeyPEM      []byte `json:"-"`
}

// Enroll issues a client certificate for the workstation name. Enrolling
// a name again replaces its certificate: the old one stops working.
// Audited with by as the actor.
func (r *Registry) Enroll(ctx context.Context, name, by string, validity time.Duration) (Enrollment, error) {
	if !namePattern.MatchString(name) {
		return Enrollment{}, fmt.Errorf("%w: name %q: use 1-63 letters, digits, '.', '_' or '-'", ErrInvalid, name)
	}
	if validity <= 0 {
		validity = DefaultValidity
	}
	if validity > 5*DefaultValidity {
		return Enrollment{}, fmt.Errorf("%w: validity over five years", ErrInvalid)
	}
	e, err := r.issue(name, validity)
	if err != nil {
		return Enrollment{}, err
	}
	now := r.cfg.Now()
	err = r.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM workstations WHERE name = ?`, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO workstations (name, serial, fingerprint, enrolled_at, enrolled_by, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			name, e.Serial, e.Fingerprint, now.UnixNano(), by, e.Expires.UnixNano())
		if err != nil {
			return err
		}
		_, err = r.cfg.Audit.AppendTx(ctx, tx, audit.Event{Time: now, Actor: by, Role: identity.RoleSystem, Action: "guard.enroll",
			Resource: "Workstation/" + name, Outcome: audit.Success, Source: "cli",
			Reason: fmt.Sprintf("client certificate %s issued until %s", e.Serial, e.Expires.Format(time.DateOnly))})
		return err
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enroll workstation %s: %w", name, err)
	}
	return e, nil
}

// issue makes a P-256 key and a client certificate for name.
func (r *Registry) issue(name string, validity time.Duration) (Enrollment, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Enrollment{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Enrollment{}, err
	}
	now := r.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{"medsec workstation"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.caCert, &key.PublicKey, r.caKey)
	if err != nil {
		return Enrollment{}, fmt.Errorf("issue workstation certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Enrollment{}, err
	}
	sum := sha256.Sum256(der)
	return Enrollment{Name: name, Serial: serial.Text(16), Fingerprint: hex.EncodeToString(sum[:]), Expires: tmpl.NotAfter,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})}, nil
}

// Revoke stops a workstation's certificate from being accepted. Audited.
func (r *Registry) Revoke(ctx context.Context, name, by, reason string) error {
	now := r.cfg.Now()
	return r.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE workstations SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL`, now.UnixNano(), by, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: %s (or it is already revoked)", ErrNotFound, name)
		}
		_, err = r.cfg.Audit.AppendTx(ctx, tx, audit.Event{Time: now, Actor: by, Role: identity.RoleSystem, Action: "guard.revoke",
			Resource: "Workstation/" + name, Outcome: audit.Success, Source: "cli", Reason: reason})
		return err
	})
}

// Workstation is one enrolled workstation.
type Workstation struct {
	Name       string    `json:"name"`
	Serial     string    `json:"serial"`
	Enrolled   time.Time `json:"enrolled"`
	EnrolledBy string    `json:"enrolled_by"`
	Expires    time.Time `json:"expires"`
	Revoked    time.Time `json:"revoked,omitzero"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
}

// List returns the enrolled workstations by name.
func (r *Registry) List(ctx context.Context) ([]Workstation, error) {
	rows, err := r.cfg.DB.Query(ctx, `SELECT name, serial, enrolled_at, enrolled_by, expires_at, revoked_at, last_seen FROM workstations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list workstations: %w", err)
	}
	defer rows.Close()
	var out []Workstation
	for rows.Next() {
		var w Workstation
		var enrolled, expires int64
		var revoked, seen *int64
		if err := rows.Scan(&w.Name, &w.Serial, &enrolled, &w.EnrolledBy, &expires, &revoked, &seen); err != nil {
			return nil, err
		}
		w.Enrolled, w.Expires = time.Unix(0, enrolled), time.Unix(0, expires)
		if revoked != nil {
			w.Revoked = time.Unix(0, *revoked)
		}
		if seen != nil {
			w.LastSeen = time.Unix(0, *seen)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// ConfigureTLS makes the server ask for client certificates. The TLS layer
// does not verify them (other capabilities use other authorities); the
// alert endpoint verifies against this CA and the registry itself.
func (r *Registry) ConfigureTLS(cfg *tls.Config) {
	if cfg.ClientAuth < tls.RequestClientCert {
		cfg.ClientAuth = tls.RequestClientCert
	}
}
