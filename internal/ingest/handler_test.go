package ingest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store/storetest"
)

// TestOnlyActiveGatewaysMayPost runs the handler over real TLS and tries
// every kind of caller.
func TestOnlyActiveGatewaysMayPost(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	srv := httptest.NewUnstartedServer(f.in.Handler())
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	gw := devicestest.EnrollGateway(t, f.a, "gw-ok")
	stopped := devicestest.EnrollGateway(t, f.a, "gw-stopped")
	if _, err := f.a.SetStatus(context.Background(), "gw-stopped", devices.StatusSuspended, "maintenance", "cli:it"); err != nil {
		t.Fatal(err)
	}
	dev := f.device("SN-HTTP", device.KeyP256)
	foreign := foreignCredentials(t)
	msg, _ := f.seal(dev, 2)
	bundle, err := ingest.EncodeBundle([][]byte{msg})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		creds  *devices.Credentials
		body   []byte
		status int
		reason phd.Reason
	}{
		{"no client certificate", nil, bundle, http.StatusUnauthorized, devices.ReasonCertificateMissing},
		{"a device's certificate", dev.creds, bundle, http.StatusForbidden, devices.ReasonGatewayUntrusted},
		{"another CA's certificate", foreign, bundle, http.StatusForbidden, devices.ReasonCertificateUntrusted},
		{"suspended gateway", stopped, bundle, http.StatusForbidden, devices.ReasonGatewayUntrusted},
		{"malformed bundle", gw, []byte("{not cbor"), http.StatusBadRequest, phd.ReasonMalformed},
		{"active gateway", gw, bundle, http.StatusOK, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL+ingest.PathMessages, roots, tt.creds, tt.body)
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != http.StatusOK {
				var ref devices.Refusal
				json.NewDecoder(resp.Body).Decode(&ref)
				if ref.Reason != tt.reason {
					t.Errorf("reason %q (%s), want %q", ref.Reason, ref.Detail, tt.reason)
				}
				return
			}
			var ans ingest.Answer
			json.NewDecoder(resp.Body).Decode(&ans)
			if ans.Gateway != "gw-ok" || len(ans.Results) != 1 || ans.Results[0].Status != ingest.Stored {
				t.Errorf("answer = %+v, want gw-ok with one stored result", ans)
			}
		})
	}
	if readings, _ := f.stored(f.patient.ID); len(readings) != 2 {
		t.Errorf("stored %d readings, want 2 (only the active gateway's delivery)", len(readings))
	}
}

func post(t *testing.T, url string, roots *x509.CertPool, creds *devices.Credentials, body []byte) *http.Response {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if creds != nil {
		cfg.Certificates = []tls.Certificate{creds.TLSCertificate()}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Post(url, ingest.ContentTypeBundle, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// foreignCredentials are a gateway's credentials from another hospital's CA.
func foreignCredentials(t *testing.T) *devices.Credentials {
	t.Helper()
	other := devicestest.New(t, storetest.OpenSQLite(t))
	return devicestest.EnrollGateway(t, other.Authority(t), "gw-ok")
}
