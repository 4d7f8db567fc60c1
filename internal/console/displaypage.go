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
// masked names of today's queue, nothing else. It needs no sign-in, so it
// reads only the console's ticket table, never the door.
func (c *Console) displayPage(w http.ResponseWriter, r *http.Request) {
	dept := chi.URLParam(r, "department")
	d := displayData{Lang: languageOf(r), Department: dept, Refresh: c.display.RefreshSeconds, Now: c.now().Local().Format("15:04")}
	if checkDepartment(dept) == nil {
		q, err := c.queue(r.Context(), dept)
		if err != nil {
			c.log.Error("waiting-room display", "error", err)
			http.Error(w, "display unavailable", http.StatusServiceUnavailable)
			return
		}
		d.Called = q.Called[:min(len(q.Called), c.display.Calling)]
		d.Waiting = q.Waiting[:min(len(q.Waiting), c.display.Waiting)]
	}
	body, err := c.views.execute(d.Lang, "display", d)
	if err != nil {
		c.log.Error("render display", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(body)
}
