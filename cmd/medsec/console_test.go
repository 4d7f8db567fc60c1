package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/server"
)

// TestServeMetricsNeedSignIn: medsec serve's /metrics answers only the
// security officer or the IT administrator, not anyone who reaches the
// host.
func TestServeMetricsNeedSignIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "h")
	pass := []byte("metrics test passphrase")
	res, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: "small", HospitalName: "Metrics Test", Passphrase: pass,
		AdminPassword: "correct-horse-battery-7", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(h, server.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mountConsole(ctx, srv, h, logger); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	get := func(auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(""); status != http.StatusUnauthorized || strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics without a sign-in: %d, want 401 without the metrics", status)
	}
	if status, _ := get("not-a-session"); status != http.StatusUnauthorized {
		t.Errorf("metrics with a made-up token: %d, want 401", status)
	}
	code, err := totp.GenerateCode(res.AdminTOTP.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := h.Staff.Login(ctx, identity.LoginRequest{Username: res.Admin.Username, Password: "correct-horse-battery-7", TOTP: code, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(token); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics for the IT administrator's session: %d, want 200 with the metrics", status)
	}

	// A scraper's long-lived token reads the metrics, nothing else, and
	// stops at once when revoked.
	admin, err := h.Staff.Sessions.Authenticate(ctx, token, "test")
	if err != nil {
		t.Fatal(err)
	}
	st, scrape, err := console.CreateScrapeToken(ctx, h, admin, "prometheus-01")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(scrape); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics with a scrape token: %d, want 200 with the metrics", status)
	}
	changed := scrape[:len(scrape)-1] + "A"
	if changed == scrape {
		changed = scrape[:len(scrape)-1] + "B"
	}
	if status, _ := get(changed); status != http.StatusUnauthorized {
		t.Errorf("metrics with a scrape token whose secret is changed: %d, want 401", status)
	}
	noFollow := ts.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/console/audit", nil)
	req.Header.Set("Authorization", "Bearer "+scrape)
	req.AddCookie(&http.Cookie{Name: "__Host-medsec-staff", Value: scrape})
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("the console's audit page with a scrape token: %d, want a sign-in", resp.StatusCode)
	}
	if err := console.RevokeScrapeToken(ctx, h, admin, st.ID); err != nil {
		t.Fatal(err)
	}
	if status, _ := get(scrape); status != http.StatusUnauthorized {
		t.Errorf("metrics with a revoked scrape token: %d, want 401", status)
	}
	if _, _, err := console.CreateScrapeToken(ctx, h, identity.Principal{Staff: identity.Staff{ID: "st_x", Username: "nurse", Role: identity.RoleNurse}}, "x"); err == nil {
		t.Error("a nurse created a scrape token")
	}
}
