package console

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

type displayData struct {
	Lang       string
	Department string
	Refresh    int
	Called     []Ticket
	Waiting    []Ticket
	Now        string
}

// displayPage is a waiting-room screen (location 7): ticket numbers and
// masked names of today's queue, nothing else. It needs no person to sign
// in but an enrolled screen: the token of its enrolment comes once in the
// address (?screen=…), is kept in a cookie and the address is cleaned;
// anything else is answered 404 as if there were no such page. It reads
// only the console's ticket table, never the door.
func (c *Console) displayPage(w http.ResponseWriter, r *http.Request) {
	dept := chi.URLParam(r, "department")
	token, fromURL := r.URL.Query().Get("screen"), true
	if token == "" {
		fromURL = false
		if ck, err := r.Cookie(displayCookie); err == nil {
			token = ck.Value
		}
	}
	ok, err := c.screenOf(r.Context(), token, dept)
	switch {
	case err != nil:
		c.log.Error("waiting-room display", "error", err)
		http.Error(w, "display unavailable", http.StatusServiceUnavailable)
		return
	case !ok || checkDepartment(dept) != nil:
		c.notFound(w, r)
		return
	case fromURL:
		setCookie(w, displayCookie, token, displayCookieAge)
		http.Redirect(w, r, "/display/"+dept, http.StatusSeeOther)
		return
	}
	c.showDisplay(w, r, dept)
}

func (c *Console) showDisplay(w http.ResponseWriter, r *http.Request, dept string) {
	d := displayData{Lang: languageOf(r), Department: dept, Refresh: c.display.RefreshSeconds, Now: c.now().Local().Format("15:04")}
	q, err := c.queue(r.Context(), dept)
	if err != nil {
		c.log.Error("waiting-room display", "error", err)
		http.Error(w, "display unavailable", http.StatusServiceUnavailable)
		return
	}
	d.Called = q.Called[:min(len(q.Called), c.display.Calling)]
	d.Waiting = q.Waiting[:min(len(q.Waiting), c.display.Waiting)]
	body, err := c.views.execute(d.Lang, "display", d)
	if err != nil {
		c.log.Error("render display", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}
