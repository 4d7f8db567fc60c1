package fhirapi

import (
	"encoding/json"
	"net/http"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/records"
)

// searchAuditEvents reads the access log: a security officer (purpose
// HOPERAT) any patient's or the whole log; a patient, only the accesses to
// their own record.
func (a *API) searchAuditEvents(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	evs, err := a.auditEvents(r, c)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	out := make([]json.RawMessage, 0, len(evs))
	for _, ev := range evs {
		b, _ := json.Marshal(audit.FHIRAuditEvent(ev))
		out = append(out, b)
	}
	writeBundle(w, "AuditEvent", out)
}

func (a *API) auditEvents(r *http.Request, c *caller) ([]audit.Event, error) {
	if c.isPatient() {
		p, err := parseSearch(r.URL.Query(), "date", "_count")
		if err != nil {
			return nil, err
		}
		return a.h.Door.AccessHistory(r.Context(), c.patient, records.AuditFilter{From: p.from, To: p.to, Limit: p.count})
	}
	p, err := parseSearch(r.URL.Query(), "patient", "agent", "date", "_count")
	if err != nil {
		return nil, err
	}
	agent := r.URL.Query().Get("agent")
	if len(agent) > 100 {
		return nil, badRequest("agent is longer than 100 bytes")
	}
	return a.h.Door.AuditEvents(r.Context(), c.req, records.AuditFilter{Patient: p.patient, Actor: staffID(agent),
		From: p.from, To: p.to, Limit: p.count})
}
