package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// testProvider is an OpenID Connect provider on loopback: discovery, a
// JWKS with one RSA key, and a token endpoint that checks the client
// secret and the PKCE verifier and returns an RS256-signed ID token.
type testProvider struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer *rsa.PrivateKey // signs ID tokens; a different key forges
	clock  *clock

	mu    sync.Mutex
	codes map[string]issued
}

type issued struct {
	challenge string
	claims    map[string]any
}

const testClientSecret = "test-client-secret"

func newTestProvider(t *testing.T, c *clock) *testProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &testProvider{key: key, signer: key, clock: c, codes: map[string]issued{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testProvider) discovery(w http.ResponseWriter, _ *http.Request) {
	u := p.srv.URL
	json.NewEncoder(w).Encode(map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
		"jwks_uri": u + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"}})
}

func (p *testProvider) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := p.key.PublicKey
	json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}}})
}

func (p *testProvider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	p.mu.Lock()
	is, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case id != "medsec" || secret != testClientSecret:
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
	case !found || b64.EncodeToString(sum[:]) != is.challenge:
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
	default:
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + randomID(), "token_type": "Bearer", "expires_in": 300,
			"id_token": p.sign(is.claims)})
	}
}

// sign makes a compact JWS (RS256) over claims.
func (p *testProvider) sign(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, p.signer, crypto.SHA256, digest[:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// authorize plays the user's visit to the provider: it reads the AuthURL
// medsec made and issues a code bound to its PKCE challenge, with claims
// built from the URL's nonce.
func (p *testProvider) authorize(t *testing.T, authURL string, claims func(nonce string) map[string]any) (state, code string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "medsec" || q.Get("response_type") != "code" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorization URL %s lacks PKCE S256, client id, code flow or openid", authURL)
	}
	code = randomToken()
	p.mu.Lock()
	p.codes[code] = issued{challenge: q.Get("code_challenge"), claims: claims(q.Get("nonce"))}
	p.mu.Unlock()
	return q.Get("state"), code
}

func (p *testProvider) claims(sub string, extra map[string]any) func(string) map[string]any {
	return func(nonce string) map[string]any {
		now := p.clock.Now()
		c := map[string]any{"iss": p.srv.URL, "aud": "medsec", "sub": sub, "nonce": nonce,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "preferred_username": "j.doe", "name": "Jane Doe"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
}

func newSSO(t *testing.T, f *fixture, p *testProvider, provision bool) *SSO {
	t.Helper()
	s, err := NewSSO(context.Background(), f.dir, SSOConfig{Issuer: p.srv.URL, ClientID: "medsec", ClientSecret: testClientSecret,
		RedirectURL: "https://medsec.hospital.test/sso/callback", Provision: provision, HTTPClient: p.srv.Client(),
		Claims: ClaimMapping{RoleClaim: "groups", DepartmentClaim: "dept",
			Roles:        map[string]string{"Ward-Nurses": RoleNurse, "Doctors": RolePhysician, "Security": RoleSecurityOfficer},
			AllowedRoles: []string{RoleNurse, RolePhysician, RoleSecurityOfficer}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSSOLogin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		p := newTestProvider(t, f.clock)
		s := newSSO(t, f, p, true)
		login := func(claims func(string) map[string]any) (Principal, error) {
			u, err := s.AuthURL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			state, code := p.authorize(t, u, claims)
			_, token, err := s.Login(ctx, state, code, "192.0.2.9")
			if err != nil {
				return Principal{}, err
			}
			return f.dir.Sessions.Authenticate(ctx, token, "192.0.2.9")
		}
		first, err := login(p.claims("subject-1", map[string]any{"groups": []string{"Ward-Nurses", "Everyone"}, "dept": "surgery"}))
		if err != nil {
			t.Fatal(err)
		}
		if first.Role != RoleNurse || first.Department != "surgery" || first.Username != "j.doe" || first.Method != "sso" || first.MFA {
			t.Errorf("got %+v, want a provisioned nurse j.doe of surgery without MFA", first)
		}
		// The same subject again: the same account, its department updated.
		again, err := login(p.claims("subject-1", map[string]any{"groups": "Ward-Nurses", "dept": "pediatrics", "amr": []string{"pwd", "otp"}}))
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || again.Department != "pediatrics" || !again.MFA {
			t.Errorf("got %+v, want account %s in pediatrics with MFA", again, first.ID)
		}
		// Another subject with the same preferred name gets its own account.
		other, err := login(p.claims("subject-2", map[string]any{"groups": "Doctors"}))
		if err != nil || other.ID == first.ID || other.Username == "j.doe" || other.Role != RolePhysician {
			t.Errorf("got %+v (%v), want a separate physician account", other, err)
		}
		// A privileged role through SSO needs the provider's second factor.
		_, err = login(p.claims("subject-3", map[string]any{"groups": "Security"}))
		wantErr(t, err, ErrMFARequired)
		sec, err := login(p.claims("subject-3", map[string]any{"groups": "Security", "amr": []string{"mfa"}}))
		if err != nil || sec.Role != RoleSecurityOfficer || !sec.MFA {
			t.Errorf("got %+v (%v), want a security officer with MFA", sec, err)
		}
		// An SSO account has no password that works.
		_, _, err = f.dir.Login(ctx, LoginRequest{Username: "j.doe", Password: noPassword})
		wantErr(t, err, ErrBadCredentials)
	})
}

func TestSSORefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		p := newTestProvider(t, f.clock)
		s := newSSO(t, f, p, true)
		nurse := map[string]any{"groups": "Ward-Nurses"}
		forger, _ := rsa.GenerateKey(rand.Reader, 2048)
		tests := []struct {
			name   string
			claims func(string) map[string]any
			before func() // changes the provider or the flow
			after  func()
			state  func(string) string
			code   func(string) string
			want   error
		}{
			{name: "forged signature", claims: p.claims("s1", nurse), before: func() { p.signer = forger }, after: func() { p.signer = p.key }, want: ErrBadCredentials},
			{name: "expired token", claims: func(n string) map[string]any {
				c := p.claims("s1", nurse)(n)
				c["exp"] = f.clock.Now().Add(-time.Minute).Unix()
				return c
			}, want: ErrBadCredentials},
			{name: "wrong audience", claims: p.claims("s1", map[string]any{"groups": "Ward-Nurses", "aud": "another-app"}), want: ErrBadCredentials},
			{name: "wrong issuer", claims: p.claims("s1", map[string]any{"groups": "Ward-Nurses", "iss": "https://evil.example"}), want: ErrBadCredentials},
			{name: "wrong nonce", claims: func(string) map[string]any { return p.claims("s1", nurse)("replayed-nonce") }, want: ErrBadCredentials},
			{name: "unknown state", claims: p.claims("s1", nurse), state: func(string) string { return randomToken() }, want: ErrCeremony},
			{name: "injected state", claims: p.claims("s1", nurse), state: func(string) string { return "' OR 1=1 --" }, want: ErrCeremony},
			{name: "wrong code", claims: p.claims("s1", nurse), code: func(string) string { return "not-the-code" }, want: ErrBadCredentials},
			{name: "PKCE verifier mismatch", claims: p.claims("s1", nurse), code: func(c string) string {
				p.mu.Lock()
				defer p.mu.Unlock()
				is := p.codes[c]
				is.challenge = b64.EncodeToString(random(32)) // the code was issued to another verifier
				p.codes[c] = is
				return c
			}, want: ErrBadCredentials},
			{name: "oversized code", claims: p.claims("s1", nurse), code: func(string) string { return strings.Repeat("c", 5000) }, want: ErrBadCredentials},
			{name: "no allowed role", claims: p.claims("s1", map[string]any{"groups": []string{"Everyone", "Admins"}}), want: ErrSSORefused},
			{name: "two roles", claims: p.claims("s1", map[string]any{"groups": []string{"Ward-Nurses", "Doctors"}}), want: ErrSSORefused},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.before != nil {
					tc.before()
				}
				if tc.after != nil {
					defer tc.after()
				}
				u, err := s.AuthURL(ctx)
				if err != nil {
					t.Fatal(err)
				}
				state, code := p.authorize(t, u, tc.claims)
				if tc.state != nil {
					state = tc.state(state)
				}
				if tc.code != nil {
					code = tc.code(code)
				}
				_, token, err := s.Login(ctx, state, code, "x")
				t.Logf("refused: %v", err)
				wantErr(t, err, tc.want)
				if token != "" {
					t.Error("got a token")
				}
			})
		}
		if list, _ := f.dir.List(ctx); len(list) != 0 {
			t.Errorf("got %d accounts after refused sign-ins, want none", len(list))
		}
		// A state is used once: the second use of a good one is refused.
		u, _ := s.AuthURL(ctx)
		state, code := p.authorize(t, u, p.claims("s1", nurse))
		if _, _, err := s.Login(ctx, state, code, "x"); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Login(ctx, state, code, "x")
		wantErr(t, err, ErrCeremony)
	})
}

func TestSSOWithoutProvisioning(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		p := newTestProvider(t, f.clock)
		s := newSSO(t, f, p, false)
		dr := f.person(t, "dr.linked", RolePhysician)
		claims := p.claims("subject-9", map[string]any{"groups": "Doctors"})
		u, _ := s.AuthURL(ctx)
		state, code := p.authorize(t, u, claims)
		_, err := s.Exchange(ctx, state, code, "x")
		wantErr(t, err, ErrSSORefused)
		if err := s.LinkSSO(ctx, f.admin, dr.ID, "subject-9", "hospital IdP account of Dr. Linked"); err != nil {
			t.Fatal(err)
		}
		u, _ = s.AuthURL(ctx)
		state, code = p.authorize(t, u, claims)
		got, err := s.Exchange(ctx, state, code, "x")
		if err != nil || got.ID != dr.ID || !got.Verified() || got.SessionID != "" {
			t.Errorf("got %+v (%v), want the linked account's principal without a session", got, err)
		}
	})
}

func TestSSOConfigRefused(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	for _, cfg := range []SSOConfig{
		{Issuer: "http://idp.example", ClientID: "medsec", ClientSecret: "s", RedirectURL: "https://x/cb"},
		{Issuer: "https://idp.example", ClientSecret: "s", RedirectURL: "https://x/cb"},
		{Issuer: "https://idp.example", ClientID: "medsec", ClientSecretEnv: "MEDSEC_TEST_UNSET_SECRET", RedirectURL: "https://x/cb"},
	} {
		if _, err := NewSSO(context.Background(), f.dir, cfg); err == nil {
			t.Errorf("NewSSO(%+v) succeeded, want a configuration error", cfg)
		}
	}
}

func TestClaimMapping(t *testing.T) {
	m := ClaimMapping{RoleClaim: "groups", DepartmentClaim: "dept", Roles: map[string]string{"N": RoleNurse, "A": RoleITAdmin, "X": "superuser"}}
	tests := []struct {
		name   string
		claims string
		want   MappedClaims
		ok     bool
	}{
		{"nurse", `{"sub":"1","groups":["N"],"dept":"surgery","email":"Kim.Nurse@Hospital.test"}`,
			MappedClaims{Subject: "1", Username: "kim.nurse", DisplayName: "kim.nurse", Role: RoleNurse, Department: "surgery"}, true},
		{"privileged role not allowed by default", `{"sub":"1","groups":"A"}`, MappedClaims{}, false},
		{"mapped to an unknown role", `{"sub":"1","groups":"X"}`, MappedClaims{}, false},
		{"no subject", `{"groups":"N"}`, MappedClaims{}, false},
		{"subject not a string", `{"sub":5,"groups":"N"}`, MappedClaims{}, false},
		{"groups not strings", `{"sub":"1","groups":[1,{"a":"N"}]}`, MappedClaims{}, false},
		{"injection in department dropped", `{"sub":"1","groups":"N","dept":"x\u0000'; DROP TABLE staff;--"}`,
			MappedClaims{Subject: "1", Username: "sso.6b86b273ff34", DisplayName: "sso.6b86b273ff34", Role: RoleNurse}, true},
		{"not JSON", `{"sub":`, MappedClaims{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Map([]byte(tc.claims))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %+v, %v; want %+v ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}
