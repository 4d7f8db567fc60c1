package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/server"
)

// TestServeImagingImport: medsec serve mounts the import API where the
// PACS capability is on, with its own body limit above the server's
// 8 MiB, and not where it is off.
func TestServeImagingImport(t *testing.T) {
	ts, token := serveImaging(t, "large", 16<<20)
	body := make([]byte, 10<<20) // over the server's 8 MiB, under the API's limit
	post := func(token string, size int) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/imaging/import?origin=USB+stick&name=blank.bin", bytes.NewReader(body[:size]))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, b := post("", len(body)); status != http.StatusUnauthorized {
		t.Errorf("10 MiB without a session: %d %s, want 401 (the route takes the size)", status, b)
	}
	status, b := post(token, len(body))
	var rep imaging.Report
	if err := json.Unmarshal(b, &rep); err != nil || status != http.StatusOK || rep.Media != imaging.MediaUpload || rep.Skipped != 1 {
		t.Errorf("10 MiB of zeros from the IT administrator: %d %s, want 200 and the file skipped (not DICOM)", status, b)
	}
	small, _ := serveImaging(t, "small", 0)
	resp, err := small.Client().Post(small.URL+"/imaging/import?origin=CD", "application/octet-stream", bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("import API of a hospital without PACS: %d, want 404", resp.StatusCode)
	}
}

// serveImaging serves a new installation of profile as medsec serve
// mounts the import API, and signs its IT administrator in.
func serveImaging(t *testing.T, profile string, maxBytes int64) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	dir, pass := filepath.Join(t.TempDir(), "h"), []byte("imaging serve test passphrase")
	res, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: profile, HospitalName: "Imaging Serve Test", Passphrase: pass,
		AdminPassword: "correct-horse-battery-9", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(h, server.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := mountImaging(ctx, srv, h, guard.Config{}, maxBytes, logger); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	code, err := totp.GenerateCode(res.AdminTOTP.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := h.Staff.Login(ctx, identity.LoginRequest{Username: res.Admin.Username, Password: "correct-horse-battery-9", TOTP: code, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return ts, token
}
