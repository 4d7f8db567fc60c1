package fhirapi

import (
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// loginRequest is the body of POST /auth/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

// loginAnswer carries the bearer token, shown once.
type loginAnswer struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	Session     string    `json:"session"`
	MFA         bool      `json:"mfa"`
}

// login signs a member of staff in (password, and a TOTP code where the
// role needs one). Failures, lockouts and successes are audited by the
// staff directory.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	var in loginRequest
	if err := decodeStrict(body, &in); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	sess, token, err := a.h.Staff.Login(r.Context(), identity.LoginRequest{Username: in.Username, Password: in.Password, TOTP: in.TOTP, Source: source(r)})
	if err != nil {
		a.failLogin(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, loginAnswer{AccessToken: token, TokenType: "Bearer", ExpiresAt: sess.Expires, Session: sess.ID, MFA: sess.MFA})
}

// failLogin answers a failed sign-in; the directory audited it already.
func (a *API) failLogin(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.status == http.StatusUnauthorized || ae.status == http.StatusUnprocessableEntity {
		if ae.status == http.StatusUnprocessableEntity {
			ae = unauthorized("%s", err.Error())
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="medsec"`)
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", "60")
		}
		writeJSON(w, ae.status, operationOutcome{ResourceType: "OperationOutcome",
			Issue: []outcomeIssue{{Severity: "error", Code: ae.code, Diagnostics: ae.msg}}})
		return
	}
	a.fail(w, r, nil, err)
}

// logout ends the session of the bearer token.
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	token, err := bearer(r)
	if err == nil {
		err = a.h.Staff.Sessions.Logout(r.Context(), token, source(r))
	}
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", unauthorized("send Authorization: Bearer <token> from POST /fhir/auth/login")
	}
	return strings.TrimSpace(token), nil
}

// authenticate turns the bearer token into the caller: a patient for a
// portal token, else a member of staff, who must name a purpose of use.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.caller(r)
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withCaller(r.Context(), c)))
	})
}

func (a *API) caller(r *http.Request) (*caller, error) {
	token, err := bearer(r)
	if err != nil {
		return nil, err
	}
	if records.IsPortalToken(token) {
		p, err := a.h.Door.AuthenticatePatient(r.Context(), token, source(r))
		if err != nil {
			return nil, err
		}
		return &caller{patient: p, req: records.Request{Purpose: records.PurposePatientRequest}}, nil
	}
	who, err := a.h.Staff.Sessions.Authenticate(r.Context(), token, source(r))
	if err != nil {
		return nil, err
	}
	c := &caller{staff: who, req: records.Request{Who: who}}
	return c, requestHeaders(r, c)
}

// requestHeaders reads the purpose of use, break-glass reason and legal
// basis; an unknown purpose or an unprintable reason is a 400.
func requestHeaders(r *http.Request, c *caller) error {
	p := r.Header.Get(HeaderPurpose)
	if p == "" {
		return badRequest("name the purpose of use in the %s header (TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH, MLTRAINING)", HeaderPurpose)
	}
	if _, err := access.ParsePurpose(p); err != nil {
		return badRequest("unknown purpose of use %q in %s; use an HL7 PurposeOfUse code: TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH, MLTRAINING", truncate(p, 40), HeaderPurpose)
	}
	c.req.Purpose = p
	var err error
	if c.req.BreakGlass, err = typedText(r, HeaderBreakGlass, 500); err != nil {
		return err
	}
	c.req.LegalBasis, err = typedText(r, HeaderLegalBasis, 200)
	return err
}

// typedText reads a header a person typed: printable, bounded.
func typedText(r *http.Request, name string, max int) (string, error) {
	v := strings.TrimSpace(r.Header.Get(name))
	if len(v) > max {
		return "", badRequest("%s is longer than %d bytes", name, max)
	}
	for _, c := range v {
		if !unicode.IsPrint(c) {
			return "", badRequest("%s holds a control character", name)
		}
	}
	return v, nil
}
