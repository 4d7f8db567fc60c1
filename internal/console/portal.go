package console

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// How patients sign in to the portal. The registration desk, having seen
// the patient, asks the door for a portal token (a decided, audited write)
// and the console hands the patient a one-time activation code on paper.
// With the code the patient chooses a user name and password; the account
// keeps the door's token sealed with the console's key, so the database
// alone opens nothing. Every sign-in unseals the token and the door checks
// it again (expired, revoked, or the patient destroyed: no access).
// Sessions are server-side with identity's timeouts; failed sign-ins lock
// the account for a while.

// Portal errors callers branch on.
var (
	// ErrActivation means the activation code is unknown, used or expired;
	// it never says which. Ask the desk for a new one.
	ErrActivation = errors.New("activation code not valid")
	// ErrPatientCredentials means the user name or password is wrong.
	ErrPatientCredentials = errors.New("wrong user name or password")
	// ErrPatientLocked means too many failed sign-ins; try again later.
	ErrPatientLocked = errors.New("portal account locked for a while")
	// ErrPortalEnded means the portal access behind the account ended
	// (expired, revoked, or the record was destroyed); the desk can give a
	// new activation.
	ErrPortalEnded = errors.New("portal access ended")
)

// Portal limits.
const (
	activationTTL     = 7 * 24 * time.Hour
	patientMaxFailure = 5
	patientLockFor    = 15 * time.Minute
	patientTokenLen   = 43
)

// Activation is what the desk prints for the patient.
type Activation struct {
	Code      string
	Pseudonym string
	Expires   time.Time
}

// IssueActivation gives the patient with the medical record number portal
// access and returns the one-time code to print (shown once; only its MAC
// is stored).
func (c *Console) IssueActivation(ctx context.Context, who identity.Principal, mrn string) (Activation, error) {
	id, err := c.findByMRN(ctx, who, mrn)
	if err != nil {
		return Activation{}, err
	}
	return c.IssueActivationFor(ctx, who, id)
}

// IssueActivationFor is IssueActivation for a patient known by internal
// id.
func (c *Console) IssueActivationFor(ctx context.Context, who identity.Principal, id string) (Activation, error) {
	token, tokenExpires, err := c.h.Door.IssuePortalAccess(ctx, records.Request{Who: who, Purpose: "TREAT"}, id, records.MaxPortalAccess)
	if err != nil {
		return Activation{}, err
	}
	a := Activation{Code: newActivationCode(), Pseudonym: c.h.Door.Pseudonym(id), Expires: c.now().Add(activationTTL)}
	actID := "pa_" + randomHex(8)
	err = c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO console_activations (id, code_mac, pseudonym, token, token_expires, expires_at, issued_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			actID, c.codeMAC(a.Code), a.Pseudonym, c.seal(token, "activation:"+actID), tokenExpires.UnixNano(), a.Expires.UnixNano(), who.ID, c.now().UnixNano()); err != nil {
			return err
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, staffEvent(who, "portal.activation.issue", a.Pseudonym, "PortalActivation/"+actID,
			"one-time activation code printed for the patient, valid 7 days"))
		return err
	})
	if err != nil {
		return Activation{}, fmt.Errorf("issue portal activation: %w", err)
	}
	return a, nil
}

// newActivationCode is 80 random bits as four groups of base32.
func newActivationCode() string {
	s := base32.StdEncoding.EncodeToString(randomBytes(10)) // 16 characters
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeCode accepts a typed code with any case, spaces and hyphens.
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, code)
}

func (c *Console) codeMAC(code string) []byte {
	m := hmac.New(sha256.New, c.codeKey)
	m.Write([]byte(normalizeCode(code)))
	return m.Sum(nil)
}

// seal and unseal keep a portal token at rest, bound to where it is kept.
func (c *Console) seal(token, where string) []byte { return sealWith(c.sealer, []byte(token), where) }

func (c *Console) unseal(sealed []byte, where string) (string, error) {
	plain, err := openWith(c.sealer, sealed, where)
	if err != nil {
		return "", fmt.Errorf("open sealed portal token: %w", err)
	}
	return string(plain), nil
}

// sealWith seals plain with a, bound to where it is kept (associated
// data), the random nonce in front.
func sealWith(a cipher.AEAD, plain []byte, where string) []byte {
	nonce := randomBytes(a.NonceSize())
	return a.Seal(nonce, nonce, plain, []byte(where))
}

func openWith(a cipher.AEAD, sealed []byte, where string) ([]byte, error) {
	n := a.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return a.Open(nil, sealed[:n], sealed[n:], []byte(where))
}

// usernameMAC is the keyed digest a portal account is found by: the user
// name a patient chose (often their name and birth year) is not kept.
func (c *Console) usernameMAC(username string) []byte {
	m := hmac.New(sha256.New, c.userKey)
	m.Write([]byte("portal user\x00" + username))
	return m.Sum(nil)
}

// upgradeUsernames turns the plaintext user names of schema version 1
// into digests; the username column then holds the account id.
func (c *Console) upgradeUsernames(ctx context.Context) error {
	legacy := map[string]string{}
	rows, err := c.h.DB.Query(ctx, `SELECT id, username FROM console_patient_accounts WHERE username_mac IS NULL`)
	if err != nil {
		return fmt.Errorf("read portal accounts: %w", err)
	}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return err
		}
		legacy[id] = name
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(legacy) == 0 {
		return err
	}
	err = c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for id, name := range legacy {
			if _, err := tx.Exec(ctx, `UPDATE console_patient_accounts SET username_mac = ?, username = ? WHERE id = ?`, c.usernameMAC(name), id, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("digest portal user names: %w", err)
	}
	return c.h.DB.Compact(ctx) // the old names leave the free pages and the WAL
}

// Activate turns an activation code into a portal account with the user
// name and password the patient chose. A second activation of the same
// patient replaces the account's password and ends its sessions.
func (c *Console) Activate(ctx context.Context, code, username, password, source string) error {
	if err := identity.CheckUsername(username); err != nil {
		return err
	}
	if err := identity.CheckPassword(password, username); err != nil {
		return err
	}
	var actID, pseudonym string
	var sealed []byte
	var tokenExpires, expires int64
	var used *int64
	err := c.h.DB.QueryRow(ctx, `SELECT id, pseudonym, token, token_expires, expires_at, used_at FROM console_activations WHERE code_mac = ?`, c.codeMAC(code)).
		Scan(&actID, &pseudonym, &sealed, &tokenExpires, &expires, &used)
	if err != nil || used != nil || !c.now().Before(time.Unix(0, expires)) {
		return ErrActivation
	}
	token, err := c.unseal(sealed, "activation:"+actID)
	if err != nil {
		return err
	}
	if _, err := c.h.Door.AuthenticatePatient(ctx, token, source); err != nil {
		return ErrActivation
	}
	return c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE console_activations SET used_at = ? WHERE id = ? AND used_at IS NULL`, c.now().UnixNano(), actID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrActivation
		}
		id, err := c.saveAccount(ctx, tx, pseudonym, username, password, token, tokenExpires)
		if err != nil {
			return err
		}
		_, err = c.h.Audit.AppendTx(ctx, tx, patientEvent(pseudonym, source, "portal.activate", audit.Success, "portal account "+id+" activated"))
		return err
	})
}

// saveAccount creates or replaces the patient's account and returns its
// id. The user name is kept only as a keyed digest.
func (c *Console) saveAccount(ctx context.Context, tx *store.Tx, pseudonym, username, password, token string, tokenExpires int64) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM console_patient_accounts WHERE pseudonym = ?`, pseudonym).Scan(&id)
	hash := identity.HashPassword(password, identity.DefaultHash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		id = "pt_" + randomHex(8)
		_, err = tx.Exec(ctx, `INSERT INTO console_patient_accounts (id, username, username_mac, pseudonym, password_hash, token, token_expires, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, id, c.usernameMAC(username), pseudonym, hash, c.seal(token, "account:"+id), tokenExpires, c.now().UnixNano())
	case err == nil:
		_, err = tx.Exec(ctx, `UPDATE console_patient_accounts SET username_mac = ?, password_hash = ?, token = ?, token_expires = ?, failures = 0, locked_until = 0 WHERE id = ?`,
			c.usernameMAC(username), hash, c.seal(token, "account:"+id), tokenExpires, id)
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE console_patient_sessions SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL`, c.now().UnixNano(), id)
		}
	}
	if errors.Is(err, store.ErrConflict) {
		return "", fmt.Errorf("%w: the user name %q is taken; choose another", identity.ErrInvalid, username)
	}
	return id, err
}

func patientEvent(pseudonym, source, action, outcome, reason string) audit.Event {
	return audit.Event{Actor: "patient:" + pseudonym, Role: "patient", Action: action, Purpose: records.PurposePatientRequest,
		Patient: pseudonym, Resource: "Portal/" + pseudonym, Outcome: outcome, Source: source, Reason: reason}
}

// patientAccount is a portal account row.
type patientAccount struct {
	id, pseudonym, hash string
	token               []byte
	failures            int
	lockedUntil         int64
}

func (c *Console) accountWhere(ctx context.Context, q store.Querier, where string, arg any) (patientAccount, error) {
	var a patientAccount
	err := q.QueryRow(ctx, `SELECT id, pseudonym, password_hash, token, failures, locked_until FROM console_patient_accounts WHERE `+where, arg).
		Scan(&a.id, &a.pseudonym, &a.hash, &a.token, &a.failures, &a.lockedUntil)
	return a, err
}

var dummyHash = sync.OnceValue(func() string { return identity.HashPassword("no such patient account", identity.DefaultHash) })

// PatientLogin checks a patient's user name and password and opens a
// portal session; it returns the session's token (for the cookie).
func (c *Console) PatientLogin(ctx context.Context, username, password, source string) (string, error) {
	if len(username) > identity.MaxUsernameLen || len(password) > 4*identity.MaxPasswordLen {
		return "", ErrPatientCredentials
	}
	a, err := c.accountWhere(ctx, c.h.DB, "username_mac = ?", c.usernameMAC(username))
	if errors.Is(err, store.ErrNotFound) {
		identity.VerifyPassword(password, dummyHash()) // the same time as a real check
		return "", ErrPatientCredentials
	}
	if err != nil {
		return "", err
	}
	now := c.now()
	if now.Before(time.Unix(0, a.lockedUntil)) {
		return "", ErrPatientLocked
	}
	if !identity.VerifyPassword(password, a.hash) {
		return "", c.patientFailed(ctx, a, source)
	}
	token, err := c.unseal(a.token, "account:"+a.id)
	if err != nil {
		return "", err
	}
	if _, err := c.h.Door.AuthenticatePatient(ctx, token, source); err != nil {
		return "", ErrPortalEnded
	}
	return c.openPatientSession(ctx, a, source)
}

// patientFailed counts a failed sign-in, locks the account after too
// many, and audits it.
func (c *Console) patientFailed(ctx context.Context, a patientAccount, source string) error {
	failures, locked := a.failures+1, int64(0)
	if failures >= patientMaxFailure {
		failures, locked = 0, c.now().Add(patientLockFor).UnixNano()
	}
	err := c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE console_patient_accounts SET failures = ?, locked_until = ? WHERE id = ?`, failures, locked, a.id); err != nil {
			return err
		}
		reason := "wrong password"
		if locked != 0 {
			reason = fmt.Sprintf("wrong password; account locked for %s after %d failures", patientLockFor, patientMaxFailure)
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, patientEvent(a.pseudonym, source, "portal.login", audit.Denied, reason))
		return err
	})
	if err != nil {
		return err
	}
	if locked != 0 {
		return ErrPatientLocked
	}
	return ErrPatientCredentials
}

const patientSessionPrefix = "mps1_"

func (c *Console) openPatientSession(ctx context.Context, a patientAccount, source string) (string, error) {
	token := patientSessionPrefix + randomToken()
	now := c.now()
	err := c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO console_patient_sessions (token_hash, account_id, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?)`,
			sessionHash(token), a.id, now.UnixNano(), now.UnixNano(), now.Add(identity.DefaultAbsoluteTimeout).UnixNano()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE console_patient_accounts SET failures = 0, last_login = ? WHERE id = ?`, now.UnixNano(), a.id); err != nil {
			return err
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, patientEvent(a.pseudonym, source, "portal.login", audit.Success, "signed in to the patient portal"))
		return err
	})
	return token, err
}

func sessionHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// patientSession is a signed-in patient: the door's principal and the
// session it came from.
type patientSession struct {
	records.PatientPrincipal
	hash []byte
}

// touchPatientEvery: most requests only read the session.
const touchPatientEvery = 30 * time.Second

// authenticatePatient checks a portal session (revoked, absolute or idle
// timeout) and the door's token behind it.
func (c *Console) authenticatePatient(ctx context.Context, token, source string) (patientSession, error) {
	if !strings.HasPrefix(token, patientSessionPrefix) || len(token) != len(patientSessionPrefix)+patientTokenLen {
		return patientSession{}, ErrPatientCredentials
	}
	h := sessionHash(token)
	var accountID string
	var lastSeen, expires int64
	var revoked *int64
	err := c.h.DB.QueryRow(ctx, `SELECT account_id, last_seen, expires_at, revoked_at FROM console_patient_sessions WHERE token_hash = ?`, h).
		Scan(&accountID, &lastSeen, &expires, &revoked)
	now := c.now()
	switch {
	case err != nil:
		return patientSession{}, ErrPatientCredentials
	case revoked != nil, !now.Before(time.Unix(0, expires)), now.Sub(time.Unix(0, lastSeen)) >= identity.DefaultIdleTimeout:
		return patientSession{}, ErrPortalEnded
	}
	a, err := c.accountWhere(ctx, c.h.DB, "id = ?", accountID)
	if err != nil {
		return patientSession{}, ErrPortalEnded
	}
	portalToken, err := c.unseal(a.token, "account:"+a.id)
	if err != nil {
		return patientSession{}, err
	}
	p, err := c.h.Door.AuthenticatePatient(ctx, portalToken, source)
	if err != nil {
		return patientSession{}, ErrPortalEnded
	}
	if now.Sub(time.Unix(0, lastSeen)) >= touchPatientEvery {
		if _, err := c.h.DB.Exec(ctx, `UPDATE console_patient_sessions SET last_seen = ? WHERE token_hash = ?`, now.UnixNano(), h); err != nil {
			return patientSession{}, err
		}
	}
	return patientSession{PatientPrincipal: p, hash: h}, nil
}

// endPatientSession signs a patient out.
func (c *Console) endPatientSession(ctx context.Context, s patientSession) error {
	err := c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE console_patient_sessions SET revoked_at = ? WHERE token_hash = ?`, c.now().UnixNano(), s.hash); err != nil {
			return err
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, patientEvent(s.Pseudonym, s.Source, "portal.logout", audit.Success, "signed out"))
		return err
	})
	return err
}
