// Package fhirapi is the clinical records API: FHIR R4 REST over HTTPS for
// Patient, Observation, Encounter, ServiceRequest and MedicationRequest
// (OCS orders), DocumentReference (EMR notes), Consent and AuditEvent, with
// bearer tokens from the staff sign-in (or a patient's portal token), the
// purpose of use in a header, and every error as an OperationOutcome that
// says why. It holds no patient data itself: every handler goes through
// the one door (records.Door), which decides, audits and unseals.
//
// It serves the paper's location 4 (HIS: OCS orders, EMR notes) and the
// patient's side of location 9 (own access history, consents).
package fhirapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/docsec"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// Headers of the API.
const (
	// HeaderPurpose carries the HL7 PurposeOfUse code of a request (TREAT,
	// ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH, MLTRAINING).
	HeaderPurpose = "X-Purpose-Of-Use"
	// HeaderBreakGlass carries the typed reason of an emergency access.
	HeaderBreakGlass = "X-Break-Glass-Reason"
	// HeaderLegalBasis names the law or order of a public-health use.
	HeaderLegalBasis = "X-Legal-Basis"
)

// MaxBody is the largest request body the API reads (413 beyond).
const MaxBody = 1 << 20

// API is the FHIR handler set of one installation.
type API struct {
	h      *hospital.Hospital
	docs   *docsec.Exporter
	log    *slog.Logger
	router chi.Router
}

// Options tunes the API.
type Options struct {
	Logger *slog.Logger
	// Documents exports watermarked, sealed documents; nil disables
	// DocumentReference/{id}/$export.
	Documents *docsec.Exporter
}

// New returns the API of an open installation, ready to mount at /fhir.
func New(h *hospital.Hospital, opt Options) *API {
	a := &API{h: h, docs: opt.Documents, log: opt.Logger, router: chi.NewRouter()}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.routes()
	return a
}

// ServeHTTP makes the API an http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

func (a *API) routes() {
	r := a.router
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, nil, notFound("no such endpoint: %s %s", r.Method, cleanPath(r.URL.Path)))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, nil, &apiError{status: http.StatusMethodNotAllowed, code: "not-supported", msg: "method " + r.Method + " is not supported here"})
	})
	r.Get("/metadata", a.capabilities)
	r.Post("/auth/login", a.login)
	r.Post("/auth/logout", a.logout)
	r.Group(func(r chi.Router) {
		r.Use(a.authenticate)
		r.Get("/Patient/{id}", a.readPatient)
		r.Get("/Patient", a.searchPatients)
		r.Post("/Patient", a.createPatient)
		r.Post("/Patient/{id}/$portal-access", a.issuePortalAccess)
		for _, k := range kinds {
			r.Get("/"+k.name+"/{id}", a.readRecord(k))
			r.Get("/"+k.name, a.searchRecords(k))
			r.Post("/"+k.name, a.createRecord(k))
		}
		r.Post("/DocumentReference/{id}/$export", a.exportDocument)
		r.Post("/DocumentReference/$trace", a.traceDocument)
		r.Get("/Consent", a.searchConsents)
		r.Post("/Consent", a.createConsent)
		r.Post("/Consent/{id}/$withdraw", a.withdrawConsent)
		r.Get("/AuditEvent", a.searchAuditEvents)
	})
}

// caller is who is asking: a member of staff (with the purpose of use and
// any break-glass reason) or a patient through the portal.
type caller struct {
	staff   identity.Principal
	patient records.PatientPrincipal
	req     records.Request
}

func (c *caller) isPatient() bool { return c.patient.Verified() }

// actor names the caller in the API's own audit events.
func (c *caller) actor() (id, role string) {
	switch {
	case c == nil:
		return "anonymous", ""
	case c.isPatient():
		return "patient:" + c.patient.Pseudonym, "patient"
	}
	return c.staff.ID, c.staff.Role
}

type callerKey struct{}

func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(callerKey{}).(*caller)
	return c
}

func withCaller(ctx context.Context, c *caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// source is the client's address for the audit log.
func source(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// cleanPath bounds what of a path goes into a message or the audit log.
func cleanPath(p string) string {
	if len(p) > 120 {
		p = p[:120] + "…"
	}
	return strings.ToValidUTF8(p, "?")
}

var startTime = time.Now()
