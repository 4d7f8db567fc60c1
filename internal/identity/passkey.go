package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// PasskeyConfig names the relying party: medsec's host name as browsers
// see it, and the origins of its console.
type PasskeyConfig struct {
	// RPID is the host name ("medsec.hospital.example").
	RPID string
	// RPDisplayName is shown by the authenticator ("Seoul General medsec").
	RPDisplayName string
	// Origins are the console's origins ("https://medsec.hospital.example").
	Origins []string
}

// Passkeys are WebAuthn credentials as a sign-in for large hospitals. Both
// ceremonies are two calls the HTTP layer makes (begin: options for the
// browser; finish: the browser's answer); the state between them stays
// server-side, five minutes, used once. Passkeys are discoverable and must
// verify the user (PIN or biometric), so a passkey sign-in counts as two
// factors.
type Passkeys struct {
	dir  *Directory
	wa   *webauthn.WebAuthn
	rpID string
}

// maxCeremonyResponse caps a browser's ceremony answer.
const maxCeremonyResponse = 64 << 10

// NewPasskeys sets up passkeys for d.
func NewPasskeys(d *Directory, cfg PasskeyConfig) (*Passkeys, error) {
	wa, err := webauthn.New(&webauthn.Config{
		RPID: cfg.RPID, RPDisplayName: cfg.RPDisplayName, RPOrigins: cfg.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL}},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Passkeys{dir: d, wa: wa, rpID: cfg.RPID}, nil
}

// Passkey is a registered credential (no key material).
type Passkey struct {
	ID       string    `json:"id"` // base64url credential id
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// passkeyUser is an account as the WebAuthn library sees it.
type passkeyUser struct {
	a     account
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return u.a.handle }
func (u *passkeyUser) WebAuthnName() string                       { return u.a.Username }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.a.DisplayName }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// BeginRegistration starts adding a passkey to the signed-in user's
// account. It returns the options for navigator.credentials.create and the
// ceremony id to give back to FinishRegistration.
func (pk *Passkeys) BeginRegistration(ctx context.Context, who Principal) (*protocol.CredentialCreation, string, error) {
	if !who.Verified() || who.Role == RoleSystem || who.SessionID == "" {
		return nil, "", fmt.Errorf("register passkey: %w: sign in first", ErrForbidden)
	}
	u, err := pk.user(ctx, who.ID, true)
	if err != nil {
		return nil, "", err
	}
	exclude := make([]protocol.CredentialDescriptor, len(u.creds))
	for i := range u.creds {
		exclude[i] = u.creds[i].Descriptor()
	}
	creation, session, err := pk.wa.BeginRegistration(u, webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, "", fmt.Errorf("register passkey: %w", err)
	}
	id, err := pk.saveSession(ctx, ceremonyPasskeyRegister, who.ID, session)
	return creation, id, err
}

// FinishRegistration checks the browser's answer (the PublicKeyCredential
// as JSON) and stores the new passkey.
func (pk *Passkeys) FinishRegistration(ctx context.Context, who Principal, ceremonyID string, response []byte) (Passkey, error) {
	session, staffID, err := pk.takeSession(ctx, ceremonyPasskeyRegister, ceremonyID, response)
	if err != nil {
		return Passkey{}, err
	}
	if !who.Verified() || staffID != who.ID {
		return Passkey{}, fmt.Errorf("register passkey: %w: the ceremony belongs to another user", ErrForbidden)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Passkey{}, fmt.Errorf("register passkey: %w: %w", ErrInvalid, err)
	}
	u, err := pk.user(ctx, who.ID, false)
	if err != nil {
		return Passkey{}, err
	}
	cred, err := pk.wa.CreateCredential(u, session, parsed)
	if err != nil {
		return Passkey{}, pk.dir.refuse(ctx, who, "staff.passkey.register", staffResource(who.ID), fmt.Errorf("%w: %s", ErrInvalid, protocolReason(err)))
	}
	return pk.store(ctx, who, cred)
}

func (pk *Passkeys) store(ctx context.Context, who Principal, cred *webauthn.Credential) (Passkey, error) {
	raw, err := json.Marshal(cred)
	if err != nil {
		return Passkey{}, err
	}
	p := Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), Created: pk.dir.now()}
	err = pk.dir.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO staff_passkeys (rp_id, credential_id, staff_id, credential, created_at) VALUES (?, ?, ?, ?, ?)`,
			pk.rpID, p.ID, who.ID, raw, p.Created.UnixNano())
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("register passkey: %w: this authenticator is already registered", ErrInvalid)
		}
		if err != nil {
			return err
		}
		return pk.dir.record(ctx, tx, who, "staff.passkey.register", staffResource(who.ID), audit.Success, "passkey "+p.ID)
	})
	return p, err
}

// BeginLogin starts a passkey sign-in (no user name: the passkey names
// its account). It returns the options for navigator.credentials.get and
// the ceremony id.
func (pk *Passkeys) BeginLogin(ctx context.Context) (*protocol.CredentialAssertion, string, error) {
	assertion, session, err := pk.wa.BeginDiscoverableLogin()
	if err != nil {
		return nil, "", fmt.Errorf("passkey sign-in: %w", err)
	}
	id, err := pk.saveSession(ctx, ceremonyPasskeyLogin, "", session)
	return assertion, id, err
}

// FinishLogin checks the browser's assertion and opens a session. A
// refused assertion is audited and answered with ErrBadCredentials.
func (pk *Passkeys) FinishLogin(ctx context.Context, ceremonyID string, response []byte, source string) (Session, string, error) {
	source = truncate(source, maxSourceLen)
	session, _, err := pk.takeSession(ctx, ceremonyPasskeyLogin, ceremonyID, response)
	if err != nil {
		return Session{}, "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Session{}, "", pk.dir.refuse(ctx, Principal{Source: source}, "staff.login", "", fmt.Errorf("%w: unreadable passkey assertion", ErrBadCredentials))
	}
	var found *passkeyUser
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := pk.userByHandle(ctx, userHandle)
		found = u
		return u, err
	}
	_, cred, err := pk.wa.ValidatePasskeyLogin(handler, session, parsed)
	if err == nil && cred.Authenticator.CloneWarning {
		err = errors.New("the signature counter went backwards: the authenticator may be cloned")
	}
	if err != nil {
		return Session{}, "", pk.refuseLogin(ctx, found, source, err)
	}
	return pk.finishLogin(ctx, found.a, cred, parsed.Response.AuthenticatorData.Flags.HasUserVerified(), source)
}

func (pk *Passkeys) refuseLogin(ctx context.Context, u *passkeyUser, source string, err error) error {
	var a *account
	if u != nil {
		a = &u.a
	}
	return pk.dir.refuse(ctx, signInActor(a, source), "staff.login", resourceOf(a),
		fmt.Errorf("%w: passkey refused: %s", ErrBadCredentials, protocolReason(err)))
}

func (pk *Passkeys) finishLogin(ctx context.Context, a account, cred *webauthn.Credential, uv bool, source string) (Session, string, error) {
	d := pk.dir
	if err := a.activeAt(d.now()); err != nil {
		return Session{}, "", d.refuse(ctx, signInActor(&a, source), "staff.login", staffResource(a.ID), err)
	}
	role := a.Role
	if a.actingRole != "" {
		role = a.actingRole
	}
	if d.RequiresMFA(role) && !uv {
		return Session{}, "", d.refuse(ctx, signInActor(&a, source), "staff.login", staffResource(a.ID),
			fmt.Errorf("%w: the passkey did not verify the user (PIN or biometric)", ErrMFARequired))
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return Session{}, "", err
	}
	_, err = d.db.Exec(ctx, `UPDATE staff_passkeys SET credential = ?, last_used_at = ? WHERE rp_id = ? AND credential_id = ?`,
		raw, d.now().UnixNano(), pk.rpID, base64.RawURLEncoding.EncodeToString(cred.ID))
	if err != nil {
		return Session{}, "", fmt.Errorf("record passkey use: %w", err)
	}
	return d.Sessions.open(ctx, a, "passkey", uv, source)
}

// List returns the passkeys of a member of staff (the owner or an IT
// administrator may list).
func (pk *Passkeys) List(ctx context.Context, by Principal, staffID string) ([]Passkey, error) {
	if err := maySeeSessions(by, staffID); err != nil {
		return nil, err
	}
	creds, err := pk.credentials(ctx, staffID)
	if err != nil {
		return nil, err
	}
	out := make([]Passkey, len(creds))
	for i, c := range creds {
		out[i] = Passkey{ID: base64.RawURLEncoding.EncodeToString(c.cred.ID), Created: c.created, LastUsed: c.lastUsed}
	}
	return out, nil
}

// Remove deletes a passkey (a lost authenticator). The owner or an IT
// administrator may.
func (pk *Passkeys) Remove(ctx context.Context, by Principal, staffID, passkeyID, reason string) error {
	if err := maySeeSessions(by, staffID); err != nil {
		return pk.dir.refuse(ctx, by, "staff.passkey.remove", staffResource(staffID), err)
	}
	return pk.dir.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM staff_passkeys WHERE rp_id = ? AND credential_id = ? AND staff_id = ?`, pk.rpID, passkeyID, staffID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("remove passkey: %w: no such passkey", ErrInvalid)
		}
		return pk.dir.record(ctx, tx, by, "staff.passkey.remove", staffResource(staffID), audit.Success, joinReason("passkey "+passkeyID, reason))
	})
}

// user loads an account and its passkeys; withHandle gives the account a
// WebAuthn user handle (32 random bytes) if it has none yet.
func (pk *Passkeys) user(ctx context.Context, staffID string, withHandle bool) (*passkeyUser, error) {
	a, err := pk.dir.accountByID(ctx, pk.dir.db, staffID)
	if err != nil {
		return nil, err
	}
	if len(a.handle) == 0 && withHandle {
		h := make([]byte, 32)
		rand.Read(h)
		if _, err := pk.dir.db.Exec(ctx, `UPDATE staff SET webauthn_handle = ? WHERE id = ? AND webauthn_handle IS NULL`, h, a.ID); err != nil {
			return nil, fmt.Errorf("give %s a passkey handle: %w", a.ID, err)
		}
		return pk.user(ctx, staffID, false)
	}
	return pk.withCredentials(ctx, a)
}

func (pk *Passkeys) userByHandle(ctx context.Context, handle []byte) (*passkeyUser, error) {
	if len(handle) == 0 || len(handle) > 64 {
		return nil, errors.New("no such passkey user")
	}
	a, err := pk.dir.accountWhere(ctx, pk.dir.db, "s.webauthn_handle = ?", handle)
	if err != nil || !bytes.Equal(a.handle, handle) {
		return nil, errors.New("no such passkey user")
	}
	return pk.withCredentials(ctx, a)
}

func (pk *Passkeys) withCredentials(ctx context.Context, a account) (*passkeyUser, error) {
	stored, err := pk.credentials(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	u := &passkeyUser{a: a}
	for _, s := range stored {
		u.creds = append(u.creds, s.cred)
	}
	return u, nil
}

type storedCredential struct {
	cred              webauthn.Credential
	created, lastUsed time.Time
}

func (pk *Passkeys) credentials(ctx context.Context, staffID string) ([]storedCredential, error) {
	rows, err := pk.dir.db.Query(ctx, `SELECT credential, created_at, last_used_at FROM staff_passkeys WHERE rp_id = ? AND staff_id = ? ORDER BY created_at`, pk.rpID, staffID)
	if err != nil {
		return nil, fmt.Errorf("read passkeys: %w", err)
	}
	defer rows.Close()
	var out []storedCredential
	for rows.Next() {
		var raw []byte
		var created int64
		var used *int64
		if err := rows.Scan(&raw, &created, &used); err != nil {
			return nil, fmt.Errorf("read passkeys: %w", err)
		}
		var s storedCredential
		if err := json.Unmarshal(raw, &s.cred); err != nil {
			return nil, fmt.Errorf("read passkey of %s: %w", staffID, err)
		}
		s.created, s.lastUsed = time.Unix(0, created), fromNanos(used)
		out = append(out, s)
	}
	return out, rows.Err()
}

func (pk *Passkeys) saveSession(ctx context.Context, kind, staffID string, s *webauthn.SessionData) (string, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return pk.dir.saveCeremony(ctx, kind, staffID, raw)
}

func (pk *Passkeys) takeSession(ctx context.Context, kind, id string, response []byte) (webauthn.SessionData, string, error) {
	if len(response) > maxCeremonyResponse {
		return webauthn.SessionData{}, "", fmt.Errorf("%w: the passkey answer is larger than %d bytes", ErrInvalid, maxCeremonyResponse)
	}
	staffID, raw, err := pk.dir.takeCeremony(ctx, kind, id)
	if err != nil {
		return webauthn.SessionData{}, "", err
	}
	var s webauthn.SessionData
	if err := json.Unmarshal(raw, &s); err != nil {
		return webauthn.SessionData{}, "", fmt.Errorf("read %s ceremony: %w", kind, err)
	}
	return s, staffID, nil
}

// protocolReason is a library error as one readable line (its details
// name the failed check; they hold no secrets).
func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return err.Error()
}
