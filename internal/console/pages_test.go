package console

import (
	"net/http"
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
	pages := []struct {
		path string
		want string // text on the page when allowed ("|" separates alternatives)
	}{
		{"/console/", "Where medical information moves"},
		{"/console/alerts", "Waiting for someone"},
		{"/console/audit", "Patient pseudonym"},
		{"/console/review", "Who holds which rights"},
		{"/console/consents", "Recent consent changes|Show consents"},
		{"/console/desk", "Show queue"},
		{"/console/devices", "Personal health devices"},
		{"/console/ledger", "Not available yet"},
		{"/console/retention", "Not available yet"},
		{"/console/datasets", "Not available yet"},
	}
	for user, c := range clients {
		role := f.staff[user].Role
		for _, p := range pages {
			t.Run(user+p.path, func(t *testing.T) {
				key := strings.Trim(strings.TrimPrefix(p.path, "/console"), "/")
				if key == "" {
					key = "overview"
				}
				r := c.get(p.path)
				if mayOpen(role, key) {
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
