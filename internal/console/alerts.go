package console

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/records"
)

type alertsData struct {
	Open    []alertView
	Closed  []alerts.Alert
	Kind    string
	Kinds   []string
	Note    string // the note typed when acknowledging failed
	NoteFor string
	// Reason is the typed reason of the break-glass session of alert
	// ReasonFor, opened for review.
	Reason, ReasonFor string
}

// alertView is an open alert with the break-glass session it reports,
// whose sealed typed reason the officer may open for the review.
type alertView struct {
	alerts.Alert
	Session string
}

// sessionPattern is the form of a break-glass session id.
var sessionPattern = regexp.MustCompile(`^bg_[a-z0-9]+$`)

// viewOf names the break-glass session a break-glass alert is about: the
// door sets the alert's Resource to "BreakGlass/<session id>".
func viewOf(a alerts.Alert) alertView {
	v := alertView{Alert: a}
	if s, ok := strings.CutPrefix(a.Resource, "BreakGlass/"); ok && a.Kind == alerts.KindBreakGlass && sessionPattern.MatchString(s) {
		v.Session = s
	}
	return v
}

var alertKinds = []string{alerts.KindBreakGlass, alerts.KindAnomaly, alerts.KindQuarantine, alerts.KindOverdue, alerts.KindVerify,
	alerts.KindDevice, alerts.KindGuard, alerts.KindPosture, alerts.KindProvision, alerts.KindRetention, alerts.KindAuthFailure}

func (c *Console) alertsPage(w http.ResponseWriter, r *http.Request, pg *page) {
	c.showAlerts(w, r, pg, http.StatusOK, alertsData{})
}

func (c *Console) showAlerts(w http.ResponseWriter, r *http.Request, pg *page, status int, d alertsData) {
	kind := r.URL.Query().Get("kind")
	if !contains(alertKinds, kind) {
		kind = ""
	}
	all, err := c.h.Alerts.List(r.Context(), alerts.Filter{Kind: kind, Limit: 500})
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	d.Kind, d.Kinds = kind, alertKinds
	for _, a := range all {
		if a.Open() {
			d.Open = append(d.Open, viewOf(a))
		} else if len(d.Closed) < 50 {
			d.Closed = append(d.Closed, a)
		}
	}
	pg.Data = d
	c.render(w, r, status, "alerts", pg)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// acknowledge closes an alert with a note; the inbox audits it.
func (c *Console) acknowledge(w http.ResponseWriter, r *http.Request, pg *page) {
	id, note := chi.URLParam(r, "id"), strings.TrimSpace(r.PostFormValue("note"))
	err := c.h.Alerts.Acknowledge(r.Context(), principalOf(r.Context()), id, note)
	switch {
	case errors.Is(err, alerts.ErrNotFound):
		c.fail(w, r, pg, errNotFound)
	case err != nil:
		// The inbox refuses an empty or overlong note with words a person
		// can act on.
		pg.Error = c.views.catalogs[languageOf(r)].text("alerts.note.needed")
		c.showAlerts(w, r, pg, http.StatusBadRequest, alertsData{Note: note, NoteFor: id})
	default:
		c.posture.forget()
		redirectDone(w, r, "/console/alerts", "ack")
	}
}

// breakGlassReason opens the sealed typed reason of an emergency access for
// the review: the door decides (a read of audit data) and audits it.
func (c *Console) breakGlassReason(w http.ResponseWriter, r *http.Request, pg *page) {
	session := r.PostFormValue("session")
	if !sessionPattern.MatchString(session) {
		c.fail(w, r, pg, errNotFound)
		return
	}
	reason, err := c.h.Door.BreakGlassReason(r.Context(), records.Request{Who: principalOf(r.Context()), Purpose: "HOPERAT"}, session)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	c.showAlerts(w, r, pg, http.StatusOK, alertsData{Reason: reason, ReasonFor: chi.URLParam(r, "id")})
}
