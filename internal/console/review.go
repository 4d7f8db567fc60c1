package console

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/identity"
)

type reviewData struct {
	Review *identity.AccessReview
	Names  map[string]string
	Now    int64
}

// reviewPage is the periodic access review: who holds which rights,
// unused rights, grants ending soon, and grants waiting for a second
// administrator.
func (c *Console) reviewPage(w http.ResponseWriter, r *http.Request, pg *page) {
	rev, err := c.h.Staff.AccessReview(r.Context(), identity.ReviewOptions{Now: c.now()})
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	pg.Data = reviewData{Review: rev, Names: c.usernames(r.Context())}
	c.render(w, r, http.StatusOK, "review", pg)
}

// decideGrant approves or rejects a pending grant; identity refuses a
// self-approval (two-person rule) and audits the decision.
func (c *Console) decideGrant(w http.ResponseWriter, r *http.Request, pg *page) {
	id, reason := chi.URLParam(r, "id"), strings.TrimSpace(r.PostFormValue("reason"))
	who := principalOf(r.Context())
	var err error
	switch r.PostFormValue("decision") {
	case "approve":
		_, err = c.h.Staff.ApproveGrant(r.Context(), who, id, reason)
	case "reject":
		_, err = c.h.Staff.RejectGrant(r.Context(), who, id, reason)
	default:
		err = errInvalid
	}
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	c.posture.forget()
	redirectDone(w, r, "/console/review", "grant")
}
