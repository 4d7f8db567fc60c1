package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/records"
)

// auditQuery is the audit search form.
type auditQuery struct {
	User, Patient, Action, Purpose, From, To string
	Searched                                 bool
}

type auditRow struct {
	audit.Event
	Who string // the actor's user name, when the actor is staff
}

type auditData struct {
	Q      auditQuery
	Rows   []auditRow
	Capped bool
}

// auditLimit is how many events a search shows (the newest).
const auditLimit = 200

// auditPage searches the access log through the door: the policy decides
// (the security officer, for operations) and the search is itself audited.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, pg *page) {
	q := r.URL.Query()
	d := auditData{Q: auditQuery{User: q.Get("user"), Patient: q.Get("patient"), Action: q.Get("action"),
		Purpose: strings.ToUpper(q.Get("purpose")), From: q.Get("from"), To: q.Get("to")}}
	d.Q.Searched = len(q) > 0
	if d.Q.Searched {
		if err := c.search(r.Context(), &d); err != nil {
			c.fail(w, r, pg, err)
			return
		}
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "audit", pg)
}

func (c *Console) search(ctx context.Context, d *auditData) error {
	f, err := c.auditFilter(ctx, d.Q)
	if err != nil {
		return err
	}
	req := records.Request{Who: principalOf(ctx), Purpose: "HOPERAT"}
	events, err := c.h.Door.AuditEvents(ctx, req, f)
	if err != nil {
		return err
	}
	names := c.usernames(ctx)
	// The door has no purpose filter; it is applied to the events it gave.
	for i := len(events) - 1; i >= 0 && len(d.Rows) < auditLimit; i-- {
		e := events[i]
		if d.Q.Purpose != "" && e.Purpose != d.Q.Purpose {
			continue
		}
		d.Rows = append(d.Rows, auditRow{Event: e, Who: names[e.Actor]})
	}
	d.Capped = len(events) == f.Limit
	return nil
}

// auditFilter turns the form into the door's filter: a user name into a
// staff id, a pseudonym into the patient's id.
func (c *Console) auditFilter(ctx context.Context, q auditQuery) (records.AuditFilter, error) {
	f := records.AuditFilter{Action: strings.TrimSpace(q.Action), Limit: 1000}
	if u := strings.TrimSpace(q.User); u != "" {
		st, err := c.h.Staff.Lookup(ctx, u)
		if err != nil {
			f.Actor = u // an id, "system:…" or "patient:…"
		} else {
			f.Actor = st.ID
		}
	}
	if p := strings.TrimSpace(q.Patient); p != "" {
		id, err := c.h.Door.ResolvePseudonym(ctx, p)
		if err != nil {
			return f, fmt.Errorf("%w: no patient has the pseudonym %q", errInvalid, p)
		}
		f.Patient = id
	}
	var err error
	if f.From, err = parseDay(q.From, false); err != nil {
		return f, err
	}
	f.To, err = parseDay(q.To, true)
	return f, err
}

// parseDay reads a date (YYYY-MM-DD) or a local date and time; an end
// date includes its whole day.
func parseDay(s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", s, time.Local); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not a date (YYYY-MM-DD)", errInvalid, s)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (c *Console) usernames(ctx context.Context) map[string]string {
	out := map[string]string{}
	staff, err := c.h.Staff.List(ctx)
	if err != nil {
		return out
	}
	for _, s := range staff {
		out[s.ID] = s.Username
	}
	return out
}

// proof downloads an event's inclusion proof against the newest signed
// checkpoint; the download is audited.
func (c *Console) proof(w http.ResponseWriter, r *http.Request, pg *page) {
	idx, err := strconv.ParseUint(chi.URLParam(r, "index"), 10, 64)
	if err != nil {
		c.fail(w, r, pg, errNotFound)
		return
	}
	ctx := r.Context()
	if _, err := c.h.Audit.Checkpoint(ctx); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	p, err := c.h.Verifier().Prove(ctx, idx)
	if err != nil {
		c.fail(w, r, pg, fmt.Errorf("%w: %v", errNotFound, err))
		return
	}
	who := principalOf(ctx)
	if _, err := c.h.Audit.Append(ctx, audit.Event{Actor: who.ID, Role: who.Role, Action: "audit.proof", Purpose: "HOPERAT",
		Resource: fmt.Sprintf("AuditEvent/%d", idx), Outcome: audit.Success, Source: who.Source, Reason: "inclusion proof downloaded"}); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="audit-proof-%d.json"`, idx))
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(p)
}
