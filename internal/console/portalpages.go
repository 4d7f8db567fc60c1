package console

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// patientCookie holds the portal session's token.
const patientCookie = "__Host-medsec-patient"

const patientKey ctxKey = 1

func patientOf(ctx context.Context) patientSession {
	s, _ := ctx.Value(patientKey).(patientSession)
	return s
}

func (c *Console) patientOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(patientCookie)
		if err != nil {
			http.Redirect(w, r, "/portal/login", http.StatusSeeOther)
			return
		}
		s, err := c.authenticatePatient(r.Context(), ck.Value, source(r))
		if err != nil {
			clearCookie(w, patientCookie)
			http.Redirect(w, r, "/portal/login?ended=1", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), patientKey, s)))
	})
}

var portalNav = []string{"home", "access", "consents", "devices", "requests"}

func (c *Console) patientPage(r *http.Request, current string) *page {
	s := patientOf(r.Context())
	pg := &page{Area: "portal", Title: "portal." + current, Who: s.Pseudonym, CSRF: c.csrfToken("patient:" + hex.EncodeToString(s.hash))}
	for _, key := range portalNav {
		href := "/portal/" + key
		if key == "home" {
			href = "/portal/"
		}
		pg.Nav = append(pg.Nav, navItem{Href: href, Label: "portal." + key, Current: key == current})
	}
	return pg
}

// portalGuard runs a portal page with the patient's CSRF check on posts.
func (c *Console) portalGuard(h func(http.ResponseWriter, *http.Request, *page)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := strings.Trim(strings.TrimPrefix(r.URL.Path, "/portal"), "/")
		if i := strings.IndexByte(key, '/'); i >= 0 {
			key = key[:i]
		}
		if key == "" {
			key = "home"
		}
		pg := c.patientPage(r, key)
		if r.Method == http.MethodPost && !c.csrfValid(r, "patient:"+hex.EncodeToString(patientOf(r.Context()).hash)) {
			c.csrfFailed(w, r, pg)
			return
		}
		h(w, r, pg)
	}
}

type portalLoginForm struct {
	Username string
	Ended    bool
}

func (c *Console) portalLoginPage(w http.ResponseWriter, r *http.Request) {
	pg := &page{Area: "portal", Title: "portal.login", CSRF: c.csrfToken("pre:" + preBinding(w, r))}
	pg.Data = portalLoginForm{Ended: r.URL.Query().Get("ended") != ""}
	c.render(w, r, http.StatusOK, "portal_login", pg)
}

func (c *Console) portalLogin(w http.ResponseWriter, r *http.Request) {
	pre := preBinding(w, r)
	pg := &page{Area: "portal", Title: "portal.login", CSRF: c.csrfToken("pre:" + pre)}
	if !c.csrfValid(r, "pre:"+pre) {
		c.csrfFailed(w, r, pg)
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	pg.Data = portalLoginForm{Username: username}
	cat := c.views.catalogs[languageOf(r)]
	if !c.limiter.allow("portal:"+source(r), c.now()) {
		pg.Error = cat.text("login.slow")
		c.render(w, r, http.StatusTooManyRequests, "portal_login", pg)
		return
	}
	token, err := c.PatientLogin(r.Context(), username, r.PostFormValue("password"), source(r))
	if err != nil {
		pg.Error = c.portalError(cat, err)
		c.render(w, r, http.StatusUnauthorized, "portal_login", pg)
		return
	}
	setCookie(w, patientCookie, token, 0)
	http.Redirect(w, r, "/portal/", http.StatusSeeOther)
}

func (c *Console) portalError(cat catalog, err error) string {
	switch {
	case errors.Is(err, ErrPatientLocked):
		return cat.text("portal.locked")
	case errors.Is(err, ErrPortalEnded):
		return cat.text("portal.ended")
	case errors.Is(err, ErrPatientCredentials):
		return cat.text("login.bad")
	case errors.Is(err, ErrActivation):
		return cat.text("activate.bad")
	case errors.Is(err, identity.ErrInvalid), errors.Is(err, identity.ErrWeakPassword):
		return err.Error()
	}
	c.log.Error("patient portal", "error", err)
	return cat.text("error.internal")
}

type activateForm struct{ Username string }

func (c *Console) activatePage(w http.ResponseWriter, r *http.Request) {
	pg := &page{Area: "portal", Title: "activate.title", CSRF: c.csrfToken("pre:" + preBinding(w, r)), Data: activateForm{}}
	c.render(w, r, http.StatusOK, "portal_activate", pg)
}

func (c *Console) activate(w http.ResponseWriter, r *http.Request) {
	pre := preBinding(w, r)
	pg := &page{Area: "portal", Title: "activate.title", CSRF: c.csrfToken("pre:" + pre)}
	if !c.csrfValid(r, "pre:"+pre) {
		c.csrfFailed(w, r, pg)
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	pg.Data = activateForm{Username: username}
	cat := c.views.catalogs[languageOf(r)]
	if !c.limiter.allow("portal:"+source(r), c.now()) {
		pg.Error = cat.text("login.slow")
		c.render(w, r, http.StatusTooManyRequests, "portal_activate", pg)
		return
	}
	if pw := r.PostFormValue("password"); pw != r.PostFormValue("password2") {
		pg.Error = cat.text("activate.mismatch")
	} else if err := c.Activate(r.Context(), r.PostFormValue("code"), username, pw, source(r)); err != nil {
		pg.Error = c.portalError(cat, err)
	}
	if pg.Error != "" {
		c.render(w, r, http.StatusBadRequest, "portal_activate", pg)
		return
	}
	http.Redirect(w, r, "/portal/login?done=activated", http.StatusSeeOther)
}

func (c *Console) portalLogout(w http.ResponseWriter, r *http.Request) {
	s := patientOf(r.Context())
	if !c.csrfValid(r, "patient:"+hex.EncodeToString(s.hash)) {
		c.csrfFailed(w, r, c.patientPage(r, "home"))
		return
	}
	if err := c.endPatientSession(r.Context(), s); err != nil {
		c.log.Warn("portal sign-out", "error", err)
	}
	clearCookie(w, patientCookie)
	http.Redirect(w, r, "/portal/login?done=signedout", http.StatusSeeOther)
}

type portalHomeData struct {
	Available bool
	Records   []RecordLine
	Expires   time.Time
}

// portalHome lists the patient's own records.
func (c *Console) portalHome(w http.ResponseWriter, r *http.Request, pg *page) {
	s := patientOf(r.Context())
	d := portalHomeData{Available: c.sections.Patient != nil, Expires: s.Expires}
	if d.Available {
		var err error
		if d.Records, err = c.sections.Patient.Records(r.Context(), s.PatientPrincipal); err != nil {
			c.fail(w, r, pg, err)
			return
		}
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "portal_home", pg)
}

// accessLine is one access to the patient's record, in the patient's
// words: who (name, role, department), what, why, and the outcome.
type accessLine struct {
	audit.Event
	Who, Role, Department string
	Self, System          bool
}

// portalAccess shows who accessed the patient's record and why.
func (c *Console) portalAccess(w http.ResponseWriter, r *http.Request, pg *page) {
	s := patientOf(r.Context())
	events, err := c.h.Door.AccessHistory(r.Context(), s.PatientPrincipal, records.AuditFilter{Limit: 300})
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	staff, err := c.h.Staff.List(r.Context())
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	byID := map[string]identity.Staff{}
	for _, st := range staff {
		byID[st.ID] = st
	}
	var lines []accessLine
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		l := accessLine{Event: e, Self: e.Actor == "patient:"+s.Pseudonym, System: strings.HasPrefix(e.Actor, "system:")}
		if st, ok := byID[e.Actor]; ok {
			l.Who, l.Role, l.Department = st.DisplayName, st.Role, st.Department
		}
		lines = append(lines, l)
	}
	pg.Data = lines
	c.render(w, r, http.StatusOK, "portal_access", pg)
}

// consentGiver is the door's patient path for giving a consent. The door
// does not have it yet; when it does, the portal offers the form.
type consentGiver interface {
	PatientRecordConsent(ctx context.Context, p records.PatientPrincipal, c records.Consent) (records.Consent, error)
}

type portalConsentsData struct {
	Consents []records.Consent
	Now      time.Time
	CanGive  bool
	Purposes []string
}

func (c *Console) portalConsents(w http.ResponseWriter, r *http.Request, pg *page) {
	cs, err := c.h.Door.PatientConsents(r.Context(), patientOf(r.Context()).PatientPrincipal)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	_, canGive := any(c.h.Door).(consentGiver)
	pg.Data = portalConsentsData{Consents: cs, Now: c.now(), CanGive: canGive, Purposes: consentPurposes()}
	c.render(w, r, http.StatusOK, "portal_consents", pg)
}

// portalWithdraw withdraws one of the patient's consents at once.
func (c *Console) portalWithdraw(w http.ResponseWriter, r *http.Request, pg *page) {
	_, err := c.h.Door.PatientWithdrawConsent(r.Context(), patientOf(r.Context()).PatientPrincipal, chi.URLParam(r, "id"),
		strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, "/portal/consents", "withdrawn")
}

func (c *Console) portalGive(w http.ResponseWriter, r *http.Request, pg *page) {
	giver, ok := any(c.h.Door).(consentGiver)
	purpose := r.PostFormValue("purpose")
	if !ok || !contains(consentPurposes(), purpose) {
		c.fail(w, r, pg, errNotFound)
		return
	}
	_, err := giver.PatientRecordConsent(r.Context(), patientOf(r.Context()).PatientPrincipal,
		records.Consent{Purpose: purpose, Permit: r.PostFormValue("permit") != "no", FormRef: "patient portal"})
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, "/portal/consents", "consent")
}

type portalDevicesData struct {
	Available bool
	Devices   []devices.Device
}

func (c *Console) portalDevices(w http.ResponseWriter, r *http.Request, pg *page) {
	d := portalDevicesData{Available: c.devices != nil}
	if d.Available {
		var err error
		d.Devices, err = c.devices.Devices(r.Context(), devices.Filter{Kind: devices.KindDevice, Patient: patientOf(r.Context()).Pseudonym})
		if err != nil {
			c.fail(w, r, pg, err)
			return
		}
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "portal_devices", pg)
}

type portalRequestsData struct {
	Available bool
	Answer    *ErasureAnswer
}

func (c *Console) portalRequests(w http.ResponseWriter, r *http.Request, pg *page) {
	pg.Data = portalRequestsData{Available: c.sections.Patient != nil}
	c.render(w, r, http.StatusOK, "portal_requests", pg)
}

// requestReference numbers a patient's request in the hospital's register.
func (c *Console) requestReference(kind string) string {
	return fmt.Sprintf("PORTAL-%s-%s-%s", kind, c.now().Format("20060102"), strings.ToUpper(randomHex(3)))
}

// portalExport downloads the patient's copy of their record (FHIR Bundle).
func (c *Console) portalExport(w http.ResponseWriter, r *http.Request, pg *page) {
	if c.sections.Patient == nil {
		c.fail(w, r, pg, errNotFound)
		return
	}
	b, err := c.sections.Patient.Export(r.Context(), patientOf(r.Context()).PatientPrincipal, c.requestReference("COPY"))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Content-Disposition", `attachment; filename="my-health-record.json"`)
	w.Write(b)
}

// portalErase carries out or refuses the patient's erasure request, after
// the patient confirmed it.
func (c *Console) portalErase(w http.ResponseWriter, r *http.Request, pg *page) {
	d := portalRequestsData{Available: c.sections.Patient != nil}
	if !d.Available || r.PostFormValue("confirm") != "yes" {
		pg.Error = c.views.catalogs[languageOf(r)].text("requests.confirm.needed")
		pg.Data = d
		c.render(w, r, http.StatusBadRequest, "portal_requests", pg)
		return
	}
	ans, err := c.sections.Patient.Erase(r.Context(), patientOf(r.Context()).PatientPrincipal, c.requestReference("ERASE"))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	if ans.Done {
		clearCookie(w, patientCookie)
	}
	d.Answer = &ans
	pg.Data = d
	c.render(w, r, http.StatusOK, "portal_requests", pg)
}
