package fhirapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// apiError is a refusal with its HTTP status and FHIR issue code; msg is
// what a person reads, and never holds PHI.
type apiError struct {
	status     int
	code       string // FHIR IssueType: invalid, structure, security, login, not-found, …
	msg        string
	retryAfter int
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "structure", msg: fmt.Sprintf(format, args...)}
}

func unprocessable(format string, args ...any) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, code: "invalid", msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: "not-found", msg: fmt.Sprintf(format, args...)}
}

func unauthorized(format string, args ...any) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: "login", msg: fmt.Sprintf(format, args...)}
}

// classify maps an error from the door, the staff directory or the store
// onto a status. Unknown errors are 500 with a generic message; their
// detail goes to the server log only.
func classify(err error) *apiError {
	var ae *apiError
	var locked *identity.LockedError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, records.ErrDenied), errors.Is(err, identity.ErrForbidden):
		return &apiError{status: http.StatusForbidden, code: "forbidden", msg: err.Error()}
	case errors.Is(err, records.ErrUnauthenticated):
		return unauthorized("%s", err.Error())
	case errors.As(err, &locked):
		return &apiError{status: http.StatusUnauthorized, code: "lock-error", msg: err.Error(), retryAfter: 60}
	case isIdentityAuthError(err):
		return unauthorized("%s", err.Error())
	case errors.Is(err, keys.ErrDestroyed):
		return &apiError{status: http.StatusGone, code: "deleted", msg: err.Error()}
	case errors.Is(err, records.ErrNotFound), errors.Is(err, identity.ErrUnknownStaff):
		return notFound("%s", err.Error())
	case errors.Is(err, records.ErrInvalid), errors.Is(err, identity.ErrInvalid):
		return unprocessable("%s", err.Error())
	case errors.Is(err, audit.ErrUnavailable), errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, code: "transient", msg: "the service cannot record the access right now; try again shortly", retryAfter: 5}
	}
	return &apiError{status: http.StatusInternalServerError, code: "exception", msg: "internal error; the security officer can find it in the server log"}
}

func isIdentityAuthError(err error) bool {
	for _, e := range []error{identity.ErrBadCredentials, identity.ErrMFARequired, identity.ErrBadSecondFactor, identity.ErrInactive,
		identity.ErrInvalidToken, identity.ErrSessionExpired, identity.ErrSessionRevoked} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// operationOutcome is the FHIR R4 OperationOutcome of an error.
type operationOutcome struct {
	ResourceType string            `json:"resourceType"`
	Issue        []outcomeIssue    `json:"issue"`
	Text         *outcomeNarrative `json:"text,omitempty"`
}

type outcomeIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics"`
}

type outcomeNarrative struct {
	Status string `json:"status"`
	Div    string `json:"div"`
}

// fail answers with an OperationOutcome and audits the refusal, unless the
// door already did (a policy denial).
func (a *API) fail(w http.ResponseWriter, r *http.Request, c *caller, err error) {
	ae := classify(err)
	if ae.status >= 500 {
		a.log.Error("fhir request failed", "method", r.Method, "route", route(r), "error", err)
	}
	if !errors.Is(err, records.ErrDenied) {
		a.auditRefusal(r, c, ae)
	}
	h := w.Header()
	if ae.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="medsec"`)
	}
	if ae.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	writeJSON(w, ae.status, operationOutcome{ResourceType: "OperationOutcome",
		Issue: []outcomeIssue{{Severity: "error", Code: ae.code, Diagnostics: ae.msg}}})
}

// auditRefusal records a request the API refused before or outside the
// door (bad token, bad input, unknown resource): who, what route, why.
func (a *API) auditRefusal(r *http.Request, c *caller, ae *apiError) {
	id, role := c.actor()
	outcome := audit.Denied
	if ae.status >= 500 {
		outcome = audit.Failed
	}
	ev := audit.Event{Actor: id, Role: role, Action: "api.refuse", Resource: r.Method + " " + route(r),
		Outcome: outcome, Source: source(r), Reason: fmt.Sprintf("%d %s", ae.status, truncate(ae.msg, 300))}
	if c != nil {
		ev.Purpose = c.req.Purpose
	}
	if _, err := a.h.Audit.Append(r.Context(), ev); err != nil {
		a.log.Error("audit a refused request", "error", err)
	}
}

// route is the matched route pattern (never the raw path, which holds ids
// and whatever an attacker typed).
func route(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception","diagnostics":"could not encode the answer"}]}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
