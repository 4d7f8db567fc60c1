package console

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/identity"
)

type deskData struct {
	Department  string
	Departments []string
	Queue       queue
	Registrar   bool // the registration desk issues tickets and portal access
	Activation  *Activation
	MRN         string
}

func (c *Console) departments(r *http.Request) []string {
	staff, err := c.h.Staff.List(r.Context())
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range staff {
		if s.Department != "" && departmentPattern.MatchString(s.Department) && !slices.Contains(out, s.Department) {
			out = append(out, s.Department)
		}
	}
	slices.Sort(out)
	return out
}

// deskPage is the waiting-area desk: the department's call queue, issuing
// tickets and patient portal access.
func (c *Console) deskPage(w http.ResponseWriter, r *http.Request, pg *page) {
	c.showDesk(w, r, pg, http.StatusOK, deskData{})
}

func (c *Console) showDesk(w http.ResponseWriter, r *http.Request, pg *page, status int, d deskData) {
	who := principalOf(r.Context())
	if d.Department == "" {
		d.Department = r.URL.Query().Get("dept")
	}
	if checkDepartment(d.Department) != nil {
		d.Department = who.Department
	}
	d.Departments, d.Registrar = c.departments(r), who.Role == identity.RoleAdministrative
	if checkDepartment(d.Department) == nil {
		q, err := c.queue(r.Context(), d.Department)
		if err != nil {
			c.fail(w, r, pg, err)
			return
		}
		d.Queue = q
	}
	pg.Data = d
	c.render(w, r, status, "desk", pg)
}

func deskURL(dept string) string { return "/console/desk?dept=" + urlQuery(dept) }

// registrarOnly: tickets and portal access start with a read of the
// patient's name, which is the registration desk's work.
func (c *Console) registrarOnly(w http.ResponseWriter, r *http.Request, pg *page) bool {
	if principalOf(r.Context()).Role != identity.RoleAdministrative {
		c.forbidPage(w, r, pg, "desk.registrar")
		return false
	}
	return true
}

func (c *Console) issueTicket(w http.ResponseWriter, r *http.Request, pg *page) {
	if !c.registrarOnly(w, r, pg) {
		return
	}
	dept := strings.TrimSpace(r.PostFormValue("department"))
	if _, err := c.IssueTicket(r.Context(), principalOf(r.Context()), dept, r.PostFormValue("mrn")); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, deskURL(dept), "ticket")
}

func (c *Console) callNext(w http.ResponseWriter, r *http.Request, pg *page) {
	dept := strings.TrimSpace(r.PostFormValue("department"))
	_, err := c.CallNext(r.Context(), principalOf(r.Context()), dept, r.PostFormValue("room"))
	if errors.Is(err, errQueueEmpty) {
		pg.Error = c.views.catalogs[languageOf(r)].text("desk.empty")
		c.showDesk(w, r, pg, http.StatusOK, deskData{Department: dept})
		return
	}
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, deskURL(dept), "called")
}

func (c *Console) finishTicket(w http.ResponseWriter, r *http.Request, pg *page) {
	if err := c.FinishTicket(r.Context(), principalOf(r.Context()), chi.URLParam(r, "id")); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, deskURL(r.PostFormValue("department")), "finished")
}

// issueActivation gives a patient portal access: the activation code is
// shown once, on a page to print for the patient.
func (c *Console) issueActivation(w http.ResponseWriter, r *http.Request, pg *page) {
	if !c.registrarOnly(w, r, pg) {
		return
	}
	a, err := c.IssueActivation(r.Context(), principalOf(r.Context()), r.PostFormValue("mrn"))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	pg.Title = "activation.title"
	pg.Data = a
	c.render(w, r, http.StatusOK, "activation", pg)
}
