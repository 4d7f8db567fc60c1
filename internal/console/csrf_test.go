package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	officer := f.signIn(t, "officer.han")
	other := f.signIn(t, "it.jung")
	id := openAlertID(t, f)
	tests := []struct {
		name  string
		form  url.Values
		fetch string // Sec-Fetch-Site
	}{
		{"no token", url.Values{"note": {"forged"}}, "same-origin"},
		{"token of another session", url.Values{"note": {"forged"}, "csrf": {other.csrf("/console/alerts")}}, "same-origin"},
		{"made-up token", url.Values{"note": {"forged"}, "csrf": {strings.Repeat("A", 43)}}, "same-origin"},
		{"cross-site post with a valid token", url.Values{"note": {"forged"}, "csrf": {officer.csrf("/console/alerts")}}, "cross-site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/console/alerts/"+id+"/ack", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", tt.fetch)
			if r := officer.do(req); r.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", r.status)
			}
			if openAlertID(t, f) != id {
				t.Errorf("the forged request acknowledged the alert")
			}
		})
	}
}

func openAlertID(t *testing.T, f *fixture) string {
	t.Helper()
	c := f.signIn(t, "officer.han")
	r := c.get("/console/alerts")
	i := strings.Index(r.body, `id="alert-`)
	if i < 0 {
		t.Fatalf("no open alert")
	}
	rest := r.body[i+len(`id="alert-`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestLimiter(t *testing.T) {
	l := newLimiter(3, time.Minute)
	now := time.Now()
	for i := range 3 {
		if !l.allow("a", now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if l.allow("a", now.Add(5*time.Second)) {
		t.Errorf("a fourth attempt within the minute was allowed")
	}
	if !l.allow("b", now) {
		t.Errorf("another address was refused")
	}
	if !l.allow("a", now.Add(2*time.Minute)) {
		t.Errorf("an attempt after the window was refused")
	}
}
