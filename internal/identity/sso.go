package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// SSOConfig configures single sign-on through an OpenID Connect provider.
type SSOConfig struct {
	// Issuer is the provider's issuer URL (https; http only on loopback).
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the client
	// secret; the secret never sits in the configuration file.
	ClientSecretEnv string `yaml:"client_secret_env"`
	ClientSecret    string `yaml:"-" secret:"true"`
	// RedirectURL is medsec's callback, registered with the provider.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes beyond openid, profile and email.
	Scopes []string     `yaml:"scopes"`
	Claims ClaimMapping `yaml:"claims"`
	// Provision creates an account on a subject's first sign-in; without
	// it an administrator links accounts first (LinkSSO).
	Provision bool `yaml:"provision"`
	// HTTPClient reaches the provider (nil: http.DefaultClient).
	HTTPClient *http.Client `yaml:"-"`
}

// SSO signs staff in through an OpenID Connect provider with the
// authorization-code flow, PKCE (S256), state and nonce. The state, nonce
// and PKCE verifier stay server-side for five minutes and are used once.
type SSO struct {
	dir      *Directory
	cfg      SSOConfig
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	issuer   string
}

// NewSSO discovers the provider (its /.well-known/openid-configuration).
func NewSSO(ctx context.Context, d *Directory, cfg SSOConfig) (*SSO, error) {
	if cfg.ClientSecret == "" && cfg.ClientSecretEnv != "" {
		cfg.ClientSecret = os.Getenv(cfg.ClientSecretEnv)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &SSO{dir: d, cfg: cfg, issuer: cfg.Issuer}
	provider, err := oidc.NewProvider(s.clientContext(ctx), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("single sign-on: discover %s: %w", cfg.Issuer, err)
	}
	s.verifier = provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: d.now,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.PS256, oidc.EdDSA}})
	s.oauth = oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: cfg.RedirectURL, Scopes: append([]string{oidc.ScopeOpenID, "profile", "email"}, cfg.Scopes...)}
	return s, nil
}

func (c SSOConfig) check() error {
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		return fmt.Errorf("single sign-on: issuer %q must be an https URL", c.Issuer)
	}
	switch {
	case c.ClientID == "":
		return errors.New("single sign-on: client_id is empty")
	case c.ClientSecret == "":
		return fmt.Errorf("single sign-on: no client secret (set $%s)", c.ClientSecretEnv)
	case c.RedirectURL == "":
		return errors.New("single sign-on: redirect_url is empty")
	}
	return nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func (s *SSO) clientContext(ctx context.Context) context.Context {
	if s.cfg.HTTPClient == nil {
		return ctx
	}
	return context.WithValue(oidc.ClientContext(ctx, s.cfg.HTTPClient), oauth2.HTTPClient, s.cfg.HTTPClient)
}

type ssoCeremony struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
}

// AuthURL starts a sign-in: redirect the browser to the URL returned. Its
// state parameter is the ceremony id that Exchange or Login takes back.
func (s *SSO) AuthURL(ctx context.Context) (string, error) {
	c := ssoCeremony{Nonce: randomToken(), Verifier: oauth2.GenerateVerifier()}
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	state, err := s.dir.saveCeremony(ctx, ceremonySSO, "", raw)
	if err != nil {
		return "", err
	}
	return s.oauth.AuthCodeURL(state, oidc.Nonce(c.Nonce), oauth2.S256ChallengeOption(c.Verifier)), nil
}

// Login finishes a sign-in from the provider's callback (its state and
// code parameters) and opens a session.
func (s *SSO) Login(ctx context.Context, state, code, source string) (Session, string, error) {
	source = truncate(source, maxSourceLen)
	a, mfa, err := s.exchange(ctx, state, code, source)
	if err != nil {
		return Session{}, "", err
	}
	return s.dir.Sessions.open(ctx, a, "sso", mfa, source)
}

// Exchange finishes a sign-in and returns the principal without opening a
// session (for callers that keep their own). It is audited as a sign-in.
func (s *SSO) Exchange(ctx context.Context, state, code, source string) (Principal, error) {
	source = truncate(source, maxSourceLen)
	a, mfa, err := s.exchange(ctx, state, code, source)
	if err != nil {
		return Principal{}, err
	}
	p := a.principal(source, s.dir.now(), "sso", mfa)
	if _, err := s.dir.Audit.Append(ctx, s.dir.event(p, "staff.login", staffResource(a.ID), audit.Success, "signed in with sso (no session)")); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// exchange redeems the code, verifies the ID token (signature, issuer,
// audience, expiry, nonce), maps its claims and finds or provisions the
// account. Every refusal is audited.
func (s *SSO) exchange(ctx context.Context, state, code, source string) (account, bool, error) {
	if s.dir.Audit == nil {
		return account{}, false, ErrNoAudit
	}
	if len(code) == 0 || len(code) > 4096 {
		return account{}, false, s.refuse(ctx, nil, source, fmt.Errorf("%w: no usable authorization code", ErrBadCredentials))
	}
	_, raw, err := s.dir.takeCeremony(ctx, ceremonySSO, state)
	if err != nil {
		return account{}, false, s.refuse(ctx, nil, source, err)
	}
	var c ssoCeremony
	if err := json.Unmarshal(raw, &c); err != nil {
		return account{}, false, fmt.Errorf("read sso ceremony: %w", err)
	}
	mc, err := s.verify(ctx, code, c)
	if err != nil {
		return account{}, false, s.refuse(ctx, nil, source, err)
	}
	a, err := s.account(ctx, mc)
	if err != nil {
		return account{}, false, s.refuse(ctx, nil, source, err)
	}
	return a, mc.MFA, s.admit(ctx, a, mc, source)
}

func (s *SSO) verify(ctx context.Context, code string, c ssoCeremony) (MappedClaims, error) {
	cctx := s.clientContext(ctx)
	tok, err := s.oauth.Exchange(cctx, code, oauth2.VerifierOption(c.Verifier))
	if err != nil {
		return MappedClaims{}, fmt.Errorf("%w: the identity provider refused the code: %s", ErrBadCredentials, oauthReason(err))
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return MappedClaims{}, fmt.Errorf("%w: the identity provider sent no ID token", ErrBadCredentials)
	}
	idt, err := s.verifier.Verify(cctx, rawID)
	if err != nil {
		return MappedClaims{}, fmt.Errorf("%w: ID token refused: %v", ErrBadCredentials, err)
	}
	if !subtleEqual(idt.Nonce, c.Nonce) {
		return MappedClaims{}, fmt.Errorf("%w: ID token refused: its nonce is not this sign-in's (a replayed token)", ErrBadCredentials)
	}
	var claims json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return MappedClaims{}, fmt.Errorf("%w: unreadable claims", ErrSSORefused)
	}
	return s.cfg.Claims.Map(claims)
}

// admit applies the account's own checks: active, and a second factor for
// a role that needs one.
func (s *SSO) admit(ctx context.Context, a account, mc MappedClaims, source string) error {
	if err := a.activeAt(s.dir.now()); err != nil {
		return s.refuse(ctx, &a, source, err)
	}
	role := a.Role
	if a.actingRole != "" {
		role = a.actingRole
	}
	if s.dir.RequiresMFA(role) && !mc.MFA {
		return s.refuse(ctx, &a, source, fmt.Errorf("%w: the identity provider did not report a second factor (amr) for the role %s", ErrMFARequired, role))
	}
	return nil
}

func (s *SSO) refuse(ctx context.Context, a *account, source string, err error) error {
	return s.dir.refuse(ctx, signInActor(a, source), "staff.login", resourceOf(a), fmt.Errorf("single sign-on: %w", err))
}

// account finds the account linked to the token's subject, updating its
// role and department from the claims, or provisions one.
func (s *SSO) account(ctx context.Context, mc MappedClaims) (account, error) {
	var a account
	err := s.dir.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		found, err := s.dir.accountWhere(ctx, tx, "s.sso_issuer = ? AND s.sso_subject = ?", s.issuer, mc.Subject)
		switch {
		case err == nil:
			a, err = s.update(ctx, tx, found, mc)
			return err
		case !errors.Is(err, ErrUnknownStaff):
			return err
		case !s.cfg.Provision:
			return fmt.Errorf("%w: no account is linked to this identity; ask an IT administrator", ErrSSORefused)
		}
		a, err = s.provision(ctx, tx, mc)
		return err
	})
	return a, err
}

func (s *SSO) update(ctx context.Context, tx *store.Tx, a account, mc MappedClaims) (account, error) {
	if a.Role == mc.Role && (mc.Department == "" || a.Department == mc.Department) {
		return a, nil
	}
	if mc.Department == "" {
		mc.Department = a.Department
	}
	_, err := tx.Exec(ctx, `UPDATE staff SET role = ?, department = ?, updated_at = ? WHERE id = ?`, mc.Role, mc.Department, s.dir.now().UnixNano(), a.ID)
	if err != nil {
		return account{}, err
	}
	reason := fmt.Sprintf("from the identity provider: role %s -> %s, department %q -> %q", a.Role, mc.Role, a.Department, mc.Department)
	a.Role, a.Department = mc.Role, mc.Department
	return a, s.dir.record(ctx, tx, System("sso"), "staff.update", staffResource(a.ID), audit.Success, reason)
}

// provision creates an account for a new subject. It has no password: it
// signs in only through the provider.
func (s *SSO) provision(ctx context.Context, tx *store.Tx, mc MappedClaims) (account, error) {
	if mc.Role == RoleExternalMaintainer {
		return account{}, fmt.Errorf("%w: an external maintainer's time-boxed account is made by an administrator, not by single sign-on", ErrSSORefused)
	}
	name, err := s.freeUsername(ctx, tx, mc)
	if err != nil {
		return account{}, err
	}
	id, now := "st_"+randomID(), s.dir.now().UnixNano()
	_, err = tx.Exec(ctx, `INSERT INTO staff (id, username, display_name, role, department, position, wards, password_hash, created_at, updated_at, sso_issuer, sso_subject) VALUES (?, ?, ?, ?, ?, '', '', ?, ?, ?, ?, ?)`,
		id, name, mc.DisplayName, mc.Role, mc.Department, noPassword, now, now, s.issuer, mc.Subject)
	if err != nil {
		return account{}, fmt.Errorf("provision account: %w", err)
	}
	err = s.dir.record(ctx, tx, System("sso"), "staff.create", staffResource(id), audit.Success,
		fmt.Sprintf("account %s with role %s provisioned by single sign-on", name, mc.Role))
	if err != nil {
		return account{}, err
	}
	return s.dir.accountByID(ctx, tx, id)
}

// noPassword is a hash no password matches (VerifyPassword needs six
// '$'-separated parts).
const noPassword = "!sso"

func (s *SSO) freeUsername(ctx context.Context, tx *store.Tx, mc MappedClaims) (string, error) {
	base := mc.Username
	for i := 0; i < 5; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%s", truncateASCII(base, MaxUsernameLen-5), randomID()[:4])
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM staff WHERE username = ?`, name).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: no free user name for %s", ErrSSORefused, base)
}

func truncateASCII(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// LinkSSO links an existing account to a provider subject, so that the
// person signs in through the provider as that account.
func (s *SSO) LinkSSO(ctx context.Context, by Principal, staffID, subject, reason string) error {
	if subject == "" || len(subject) > 255 || !printable(subject) {
		return invalidf("subject: 1-255 printable characters")
	}
	return s.dir.change(ctx, by, staffID, "staff.sso.link", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		_, err := tx.Exec(ctx, `UPDATE staff SET sso_issuer = ?, sso_subject = ?, updated_at = ? WHERE id = ?`, s.issuer, subject, s.dir.now().UnixNano(), a.ID)
		if errors.Is(err, store.ErrConflict) {
			return "", fmt.Errorf("%w: that subject is linked to another account", ErrInvalid)
		}
		return "linked to " + s.issuer, err
	})
}

// oauthReason is the provider's error code, without its free text.
func oauthReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return re.ErrorCode
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}
