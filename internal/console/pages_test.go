package console

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestPagesByRole opens every console page as every role: each role sees
// what its work needs and gets a clear 403 page for the rest.
func TestPagesByRole(t *testing.T) {
	f := newFixture(t)
	clients := map[string]*client{}
	for _, s := range fixtureStaff {
		clients[s.Username] = f.signIn(t, s.Username)
	}
	// Who may open what is written out here, apart from the console's own
	// table, so a role given a page by mistake fails the test.
	const (
		officer, it, desk = "security_officer", "it_admin", "administrative"
		doctor, nurse     = "physician", "nurse"
	)
	pages := []struct {
		path  string
		want  string   // text on the page when allowed ("|" separates alternatives)
		roles []string // the fixture's roles that may open it
	}{
		{"/console/", "Where medical information moves", []string{officer, it, desk, doctor, nurse}},
		{"/console/alerts", "Waiting for someone", []string{officer, it}},
		{"/console/audit", "Patient pseudonym", []string{officer}},
		{"/console/review", "Who holds which rights", []string{officer, it}},
		{"/console/consents", "Recent consent changes|Show consents", []string{officer, desk, doctor, nurse}},
		{"/console/desk", "Show queue", []string{desk, doctor, nurse}},
		{"/console/devices", "Personal health devices", []string{officer, it}},
		{"/console/displays", "Enrol screen", []string{officer, it}},
		{"/console/ledger", "Not available yet", []string{officer, it}},
		{"/console/retention", "Not available yet", []string{officer, it}},
		{"/console/datasets", "Not available yet", []string{officer, it}},
	}
	for user, c := range clients {
		role := f.staff[user].Role
		for _, p := range pages {
			t.Run(user+p.path, func(t *testing.T) {
				r := c.get(p.path)
				if slices.Contains(p.roles, role) {
					if r.status != http.StatusOK || !containsAny(r.body, p.want) {
						t.Errorf("%s as %s: status %d, want 200 with %q", p.path, role, r.status, p.want)
					}
					return
				}
				if r.status != http.StatusForbidden || !strings.Contains(r.body, "Not for your role") || containsAny(r.body, p.want) {
					t.Errorf("%s as %s: status %d, want the 403 page and nothing of the page", p.path, role, r.status)
				}
			})
		}
	}
}

func TestNurseCannotOpenAudit(t *testing.T) {
	f := newFixture(t)
	r := f.signIn(t, "nurse.lee").get("/console/audit?user=dr.kim")
	if r.status != http.StatusForbidden {
		t.Fatalf("nurse opening the audit log: status %d, want 403", r.status)
	}
	for _, want := range []string{"Not for your role", "Audit log", "nurse", "security officer"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("403 page lacks %q", want)
		}
	}
}

func containsAny(s, alternatives string) bool {
	for _, a := range strings.Split(alternatives, "|") {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}
