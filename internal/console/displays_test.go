package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var screenAddress = regexp.MustCompile(`https://[^<\s]+(/display/[a-z0-9_-]+\?screen=msd1_[A-Za-z0-9_-]{43})`)

// TestDisplayNeedsEnrolment: a waiting-room display shows its queue only
// on a screen the security officer enrolled for that department; anyone
// else gets the same 404 as for a page that does not exist.
func TestDisplayNeedsEnrolment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.con.IssueTicket(ctx, f.principal(t, "reception"), "internal_medicine", f.mrns[0]); err != nil {
		t.Fatal(err)
	}
	stranger := f.client(t)
	for _, path := range []string{"/display/internal_medicine", "/display/internal_medicine?screen=msd1_" + strings.Repeat("A", 43), "/display/internal_medicine?screen=x"} {
		if r := stranger.get(path); r.status != http.StatusNotFound || strings.Contains(r.body, "김*수") {
			t.Errorf("%s without an enrolled screen: %d, want 404 without the queue", path, r.status)
		}
	}

	// The nurse may not enrol a screen; the security officer may, and
	// sees its address once.
	nurse := f.signIn(t, "nurse.lee")
	if r := nurse.post("/console/displays", url.Values{"csrf": {nurse.csrf("/console/desk")}, "department": {"internal_medicine"}}); r.status != http.StatusForbidden {
		t.Errorf("a nurse enrolling a screen: %d, want 403", r.status)
	}
	officer := f.signIn(t, "officer.han")
	page := officer.post("/console/displays", url.Values{"csrf": {officer.csrf("/console/displays")}, "department": {"internal_medicine"}, "label": {"2nd floor"}})
	m := screenAddress.FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		t.Fatalf("enrol a screen: %d, no screen address on the page", page.status)
	}
	token := strings.TrimPrefix(m[1], "/display/internal_medicine?screen=")
	if list := officer.get("/console/displays"); strings.Contains(list.body, token) || !strings.Contains(list.body, "2nd floor") {
		t.Errorf("the screens page shows the token again or lacks the new screen")
	}
	if stored := rawRows(t, f, "console_displays"); strings.Contains(stored, token) {
		t.Errorf("the screen's token is stored in plaintext")
	}

	screen := f.client(t)
	r := screen.get(m[1])
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/display/internal_medicine" || !strings.Contains(r.header.Get("Set-Cookie"), displayCookie) {
		t.Fatalf("opening the screen's address: %d %q, want the token kept in a cookie and a clean address", r.status, r.header.Get("Location"))
	}
	if r := screen.get("/display/internal_medicine"); r.status != http.StatusOK || !strings.Contains(r.body, "김*수") {
		t.Errorf("the enrolled screen: %d, want the queue", r.status)
	}
	if r := screen.get("/display/surgery"); r.status != http.StatusNotFound {
		t.Errorf("the screen of internal_medicine opening surgery's queue: %d, want 404", r.status)
	}
	if r := f.client(t).get("/display/surgery?screen=" + token); r.status != http.StatusNotFound {
		t.Errorf("the token of internal_medicine's screen on surgery's address: %d, want 404", r.status)
	}

	ds, err := f.con.Displays(ctx)
	if err != nil || len(ds) != 1 {
		t.Fatalf("displays = %+v, %v", ds, err)
	}
	if r := officer.post("/console/displays/"+ds[0].ID+"/revoke", url.Values{"csrf": {officer.csrf("/console/displays")}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	if r := screen.get("/display/internal_medicine"); r.status != http.StatusNotFound {
		t.Errorf("a revoked screen: %d, want 404", r.status)
	}
	if !auditHas(t, f, "display.enrol", "internal_medicine") || !auditHas(t, f, "display.revoke", "revoked") {
		t.Errorf("enrolment and revocation are not in the audit log")
	}
}

func TestEnrolDisplayRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		user, dept, label string
	}{
		{"reception", "internal_medicine", ""},
		{"officer.han", "../console", ""},
		{"officer.han", "internal_medicine", "line\nbreak"},
		{"officer.han", "internal_medicine", strings.Repeat("x", 81)},
	} {
		if _, err := f.con.EnrolDisplay(ctx, f.principal(t, tc.user), tc.dept, tc.label); err == nil {
			t.Errorf("EnrolDisplay(%s, %q, %q) succeeded", tc.user, tc.dept, tc.label)
		}
	}
	if _, err := f.con.EnrolDisplay(ctx, f.principal(t, "it.jung"), "surgery", "ward 7B"); err != nil {
		t.Errorf("the IT administrator enrolling a screen: %v", err)
	}
}
