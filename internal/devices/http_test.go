package devices_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store/storetest"
)

// TestHTTPAPI runs enrollment, renewal and the status list over real TLS.
func TestHTTPAPI(t *testing.T) {
	h, a, _ := newAuthority(t, storetest.OpenSQLite(t))
	ctx := context.Background()
	hospitalKey, _ := ecdh.P256().GenerateKey(rand.Reader)
	handler, err := a.Handler(hospitalKey.PublicKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	p := h.Patient(t)
	tok := deviceToken(t, a, p.ID, "HEM-9200T")
	creds, err := devices.NewClient(srv.URL, roots, nil).EnrollDevice(ctx, tok.Secret, "SN-H1", "HEM-9200T", device.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	if !creds.HospitalKey.Equal(hospitalKey.PublicKey()) || !creds.CA.Equal(a.CA()) {
		t.Errorf("enrollment did not hand over the hospital key and the CA")
	}
	var ref *devices.Refusal
	_, err = devices.NewClient(srv.URL, roots, nil).EnrollDevice(ctx, tok.Secret, "SN-H2", "HEM-9200T", device.KeyP256)
	if !errors.As(err, &ref) || ref.Reason != devices.ReasonTokenInvalid {
		t.Errorf("reused token over HTTP: got %v, want refusal token-invalid", err)
	}

	csr, _ := device.CreateCSR(creds.Key, "SN-H1", "HEM-9200T")
	renewed, err := devices.NewClient(srv.URL, roots, creds).Renew(ctx, csr)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Certificate.SerialNumber.Cmp(creds.Certificate.SerialNumber) == 0 {
		t.Errorf("renewal returned the same certificate")
	}
	if _, err := devices.NewClient(srv.URL, roots, nil).Renew(ctx, csr); !errors.As(err, &ref) || ref.Reason != devices.ReasonCertificateMissing {
		t.Errorf("renewal without a client certificate: got %v, want certificate-missing", err)
	}

	gw := devicestest.EnrollGateway(t, a, "gw-h")
	if _, err := a.SetStatus(ctx, "SN-H1", devices.StatusLost, "reported stolen", "cli:officer"); err != nil {
		t.Fatal(err)
	}
	gc := devices.NewClient(srv.URL, roots, gw)
	l, _, _, changed, err := gc.StatusList(ctx, a.CA(), 0)
	if err != nil || !changed || l.Index()["SN-H1"] != devices.StatusLost {
		t.Fatalf("status list = %+v, changed %v, err %v; want SN-H1 lost", l, changed, err)
	}
	if _, _, _, changed, err := gc.StatusList(ctx, a.CA(), l.Revision); err != nil || changed {
		t.Errorf("status list at the same revision: changed %v, err %v; want unchanged", changed, err)
	}
	_, _, _, _, err = devices.NewClient(srv.URL, roots, creds).StatusList(ctx, a.CA(), 0)
	if !errors.As(err, &ref) || ref.Reason != devices.ReasonGatewayUntrusted {
		t.Errorf("status list for a device: got %v, want gateway-untrusted", err)
	}
}
