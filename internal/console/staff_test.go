package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
)

func TestStaffSignIn(t *testing.T) {
	f := newFixture(t)
	officer := f.staff["officer.han"]
	tests := []struct {
		name       string
		form       func(c *client) url.Values
		wantStatus int
		wantText   string
	}{
		{"wrong password", func(c *client) url.Values {
			return url.Values{"csrf": {c.csrf("/console/login")}, "username": {"officer.han"}, "password": {"wrong"}}
		}, http.StatusUnauthorized, "Wrong user name or password."},
		{"unknown user says the same", func(c *client) url.Values {
			return url.Values{"csrf": {c.csrf("/console/login")}, "username": {"nobody"}, "password": {"wrong"}}
		}, http.StatusUnauthorized, "Wrong user name or password."},
		{"officer without a code", func(c *client) url.Values {
			return url.Values{"csrf": {c.csrf("/console/login")}, "username": {"officer.han"}, "password": {officer.Password}}
		}, http.StatusUnauthorized, "6-digit code"},
		{"no CSRF token", func(c *client) url.Values {
			return url.Values{"username": {"officer.han"}, "password": {officer.Password}, "code": {f.code(t, officer)}}
		}, http.StatusForbidden, "The form has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t)
			r := c.post("/console/login", tt.form(c))
			if r.status != tt.wantStatus || !strings.Contains(r.body, tt.wantText) {
				t.Errorf("status %d, want %d with %q", r.status, tt.wantStatus, tt.wantText)
			}
			if strings.Contains(r.header.Get("Set-Cookie"), staffCookie+"=mss1") {
				t.Errorf("a failed sign-in set a session cookie")
			}
		})
	}
}

func TestSessionCookieAndTimeout(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	a := f.staff["dr.kim"]
	r := c.post("/console/login", url.Values{"csrf": {c.csrf("/console/login")}, "username": {"dr.kim"}, "password": {a.Password}})
	var cookie string
	for _, sc := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, staffCookie+"=") {
			cookie = sc
		}
	}
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "Max-Age") || strings.Contains(cookie, "Expires") {
		t.Errorf("session cookie %q outlives the browser session", cookie)
	}
	if r := c.get("/console/"); r.status != http.StatusOK {
		t.Fatalf("overview after sign-in: %d", r.status)
	}
	f.clock.add(16 * time.Minute) // identity's idle timeout is 15 minutes
	r = c.get("/console/")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login?ended=expired" {
		t.Errorf("after 16 idle minutes: %d to %q, want a redirect to the sign-in page saying the session expired", r.status, r.header.Get("Location"))
	}
	if r := c.get("/console/login?ended=expired"); !strings.Contains(r.body, "unused for 15 minutes") {
		t.Errorf("sign-in page does not say why the session ended")
	}
}

func TestSignOut(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "nurse.lee")
	r := c.post("/console/logout", url.Values{"csrf": {c.csrf("/console/")}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", r.status)
	}
	if r := c.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("after sign-out the overview answered %d, want a redirect to sign in", r.status)
	}
}

func TestAcknowledgeAlert(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	open, err := f.h.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindBreakGlass})
	if err != nil || len(open) != 1 {
		t.Fatalf("fixture break-glass alerts: %d, %v", len(open), err)
	}
	id := open[0].ID
	c := f.signIn(t, "officer.han")
	page := c.get("/console/alerts")
	if !strings.Contains(page.body, open[0].Summary) {
		t.Fatalf("alerts page does not show the break-glass alert")
	}
	token := c.csrf("/console/alerts")
	if strings.Contains(page.body, "patient collapsed in the corridor") {
		t.Errorf("the alerts page shows the sealed break-glass reason before anyone opened it")
	}
	session, ok := strings.CutPrefix(open[0].Resource, "BreakGlass/")
	if !ok || !strings.Contains(page.body, `name="session" value="`+session+`"`) {
		t.Fatalf("the alerts page offers no review of the alert's break-glass session %q", open[0].Resource)
	}
	r := c.post("/console/alerts/"+id+"/reason", url.Values{"csrf": {token}, "session": {session}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "patient collapsed in the corridor") {
		t.Errorf("opening the typed reason: %d, reason not shown", r.status)
	}
	if !auditHas(t, f, "audit.read", "break-glass reason opened") {
		t.Errorf("opening the typed reason was not audited")
	}
	if r := c.post("/console/alerts/"+id+"/reason", url.Values{"csrf": {token}, "session": {"../x"}}); r.status != http.StatusNotFound {
		t.Errorf("a malformed session id: %d, want 404", r.status)
	}
	if r := c.post("/console/alerts/"+id+"/ack", url.Values{"csrf": {token}, "note": {"  "}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "Write a note") {
		t.Errorf("empty note: %d, want 400 asking for a note", r.status)
	}
	note := "called Nurse Park: real emergency, corridor collapse; reviewed with ward 5A"
	if r := c.post("/console/alerts/"+id+"/ack", url.Values{"csrf": {token}, "note": {note}}); r.status != http.StatusSeeOther {
		t.Fatalf("acknowledge: %d", r.status)
	}
	if left, _ := f.h.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindBreakGlass}); len(left) != 0 {
		t.Errorf("%d break-glass alerts still open after acknowledging", len(left))
	}
	if !auditHas(t, f, "alert.acknowledge", note) {
		t.Errorf("no audit event holds the acknowledgement note")
	}
	if r := c.post("/console/alerts/"+id+"/ack", url.Values{"csrf": {token}, "note": {"again"}}); r.status != http.StatusNotFound {
		t.Errorf("acknowledging twice: %d, want 404", r.status)
	}
}

// TestBreakGlassSessionFromResource: the review opens the session the
// alert's Resource names, never one read out of the alert's words.
func TestBreakGlassSessionFromResource(t *testing.T) {
	for _, tc := range []struct {
		a    alerts.Alert
		want string
	}{
		{alerts.Alert{Kind: alerts.KindBreakGlass, Resource: "BreakGlass/bg_abc123", Detail: "session bg_other; policy: …"}, "bg_abc123"},
		{alerts.Alert{Kind: alerts.KindBreakGlass, Detail: "session bg_other; policy: …"}, ""},
		{alerts.Alert{Kind: alerts.KindBreakGlass, Resource: "BreakGlass/../x"}, ""},
		{alerts.Alert{Kind: alerts.KindAnomaly, Resource: "BreakGlass/bg_abc123"}, ""},
		{alerts.Alert{Kind: alerts.KindBreakGlass, Resource: "Patient/bg_abc123"}, ""},
	} {
		if got := viewOf(tc.a).Session; got != tc.want {
			t.Errorf("session of %+v = %q, want %q", tc.a, got, tc.want)
		}
	}
}

func auditHas(t *testing.T, f *fixture, action, reason string) bool {
	t.Helper()
	found := false
	err := audit.Scan(context.Background(), f.h.DB, f.h.Audit.Chain(), 0, 0, func(e audit.Event) error {
		if e.Action == action && strings.Contains(e.Reason, reason) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestAuditSearchAndProof(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "officer.han")
	r := c.get("/console/audit?user=dr.kim&action=observation.")
	if r.status != http.StatusOK {
		t.Fatalf("search: %d\n%s", r.status, r.body)
	}
	if got := strings.Count(r.body, "observation.write"); got != len(f.patients) {
		t.Errorf("search for dr.kim's observation writes shows %d, want %d", got, len(f.patients))
	}
	r = c.get("/console/audit?patient=" + f.patients[1].Pseudonym + "&purpose=etreat")
	if !strings.Contains(r.body, "break-glass") || strings.Contains(r.body, "observation.write") {
		t.Errorf("search by pseudonym and purpose ETREAT does not show just the break-glass access")
	}
	if r := c.get("/console/audit?patient=P-nosuchpatient"); r.status != http.StatusBadRequest {
		t.Errorf("unknown pseudonym: %d, want 400", r.status)
	}
	if !auditHas(t, f, "audit.search", "") {
		t.Errorf("the search was not audited")
	}
	r = c.get("/console/audit/proof/3")
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Disposition"), "audit-proof-3.json") {
		t.Fatalf("proof download: %d %q", r.status, r.header.Get("Content-Disposition"))
	}
	var p audit.InclusionProof
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatal(err)
	}
	if err := audit.CheckProof(p, f.h.Verifier().NoteVerifier); err != nil || p.Index != 3 {
		t.Errorf("downloaded proof of event %d does not check: %v", p.Index, err)
	}
	if r := c.get("/console/audit/proof/999999"); r.status != http.StatusNotFound {
		t.Errorf("proof of a missing event: %d, want 404", r.status)
	}
}

func TestVerifyNowAndOverview(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "it.jung")
	r := c.get("/console/")
	for _, want := range []string{"never verified", "Open alerts", "Emergency access (break-glass): 1", "<svg class=\"flowmap\"", "Accesses per department"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if r := c.post("/console/audit/verify", url.Values{"csrf": {c.csrf("/console/")}}); r.status != http.StatusSeeOther {
		t.Fatalf("verify now: %d", r.status)
	}
	r = c.get("/console/?done=verify")
	if !strings.Contains(r.body, "audit log intact") || strings.Contains(r.body, "never verified") {
		t.Errorf("overview after verifying does not show the verification")
	}
	nurse := f.signIn(t, "nurse.lee").get("/console/")
	if strings.Contains(nurse.body, "Open alerts") || !strings.Contains(nurse.body, "Where medical information moves") {
		t.Errorf("a nurse's overview shows the alert panel or lacks the map")
	}
}
