package devices_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAuthority(t *testing.T, db *store.DB) (*devicestest.Hospital, *devices.Authority, *clock) {
	t.Helper()
	h := devicestest.New(t, db)
	c := &clock{t: time.Now()}
	a, err := devices.Open(context.Background(), devices.Config{DB: db, Keys: h.Keys, Audit: h.Audit, Door: h.Door,
		Organization: "Test Hospital", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return h, a, c
}

func deviceToken(t *testing.T, a *devices.Authority, patientID, model string) devices.Token {
	t.Helper()
	tok, err := a.IssueToken(context.Background(), devices.TokenRequest{Kind: devices.KindDevice, PatientID: patientID, Model: model, By: "cli:admin"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func deviceCSR(t *testing.T, kt device.KeyType, serial, model string) ([]byte, *devices.Credentials) {
	t.Helper()
	key, err := device.GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := device.CreateCSR(key, serial, model)
	if err != nil {
		t.Fatal(err)
	}
	return csr, &devices.Credentials{Key: key}
}

func TestEnrollBindsSerialModelAndPatient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h, a, _ := newAuthority(t, db)
		ctx := context.Background()
		p := h.Patient(t)
		for _, kt := range []device.KeyType{device.KeyP256, device.KeyEd25519} {
			serial := "SN-" + string(kt)
			tok := deviceToken(t, a, p.ID, "HEM-9200T")
			if !strings.HasPrefix(tok.Secret, "mset1-") || tok.Patient != p.Pseudonym {
				t.Errorf("token = %+v, want an mset1- secret for patient %s", tok, p.Pseudonym)
			}
			csr, _ := deviceCSR(t, kt, serial, "HEM-9200T")
			iss, err := a.Enroll(ctx, tok.Secret, csr)
			if err != nil {
				t.Fatal(err)
			}
			id, err := devices.NewVerifier(a.CA()).Verify(iss.Certificate, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := devices.Identity{Kind: devices.KindDevice, Serial: serial, Model: "HEM-9200T", Patient: p.Pseudonym,
				NotAfter: iss.Certificate.NotAfter, PublicKey: iss.Certificate.PublicKey}
			if diff := cmp.Diff(want, id); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			if life := iss.Certificate.NotAfter.Sub(iss.Certificate.NotBefore); life > devices.DefaultDeviceCertTTL+10*time.Minute {
				t.Errorf("device certificate lives %s, want short-lived (%s)", life, devices.DefaultDeviceCertTTL)
			}
			d, err := a.Device(ctx, serial)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != devices.StatusActive || d.Patient != p.Pseudonym || d.Kind != devices.KindDevice {
				t.Errorf("registry entry = %+v", d)
			}
			if _, err := a.Enroll(ctx, tok.Secret, csr); !errors.Is(err, devices.ErrTokenInvalid) {
				t.Errorf("second use of a token: got %v, want ErrTokenInvalid", err)
			}
		}
	})
}

func TestEnrollRefuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h, a, c := newAuthority(t, db)
		ctx := context.Background()
		p := h.Patient(t)
		csr, _ := deviceCSR(t, device.KeyP256, "SN-1", "HEM-9200T")
		if _, err := a.Enroll(ctx, deviceToken(t, a, p.ID, "HEM-9200T").Secret, csr); err != nil {
			t.Fatal(err)
		}
		expired := deviceToken(t, a, p.ID, "HEM-9200T")
		c.t = c.t.Add(devices.DefaultTokenTTL + time.Minute)
		other, _ := deviceCSR(t, device.KeyP256, "SN-2", "HEM-9200T")
		gatewayCSR, _ := devices.CreateGatewayCSR(mustKey(t), "gw-1", []string{"127.0.0.1"})
		for _, tt := range []struct {
			name  string
			token string
			csr   []byte
			want  error
		}{
			{"unknown token", "mset1-nosuchtoken", other, devices.ErrTokenInvalid},
			{"expired token", expired.Secret, other, devices.ErrTokenInvalid},
			{"model differs from the token", deviceToken(t, a, p.ID, "GL-50").Secret, other, devices.ErrBadRequest},
			{"serial enrolled already", deviceToken(t, a, p.ID, "HEM-9200T").Secret, csr, devices.ErrEnrolled},
			{"garbage request", deviceToken(t, a, p.ID, "HEM-9200T").Secret, []byte("not DER"), devices.ErrBadRequest},
			{"gateway request on a device token", deviceToken(t, a, p.ID, "HEM-9200T").Secret, gatewayCSR, devices.ErrBadRequest},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := a.Enroll(ctx, tt.token, tt.csr); !errors.Is(err, tt.want) {
					t.Errorf("Enroll = %v, want %v", err, tt.want)
				}
			})
		}
		if _, err := a.Device(ctx, "SN-2"); !errors.Is(err, devices.ErrUnknownDevice) {
			t.Errorf("a refused enrollment registered SN-2: %v", err)
		}
	})
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTokenRequestsRefused(t *testing.T) {
	h, a, _ := newAuthority(t, storetest.OpenSQLite(t))
	p := h.Patient(t)
	for name, req := range map[string]devices.TokenRequest{
		"no operator":          {Kind: devices.KindDevice, PatientID: p.ID, Model: "M"},
		"no patient":           {Kind: devices.KindDevice, Model: "M", By: "x"},
		"unknown patient":      {Kind: devices.KindDevice, PatientID: "pt_nobody", Model: "M", By: "x"},
		"gateway with patient": {Kind: devices.KindGateway, PatientID: p.ID, Model: "gw", By: "x"},
		"bad model":            {Kind: devices.KindDevice, PatientID: p.ID, Model: "a/b", By: "x"},
		"bad kind":             {Kind: "toaster", Model: "M", By: "x"},
	} {
		if _, err := a.IssueToken(context.Background(), req); err == nil {
			t.Errorf("%s: IssueToken succeeded", name)
		}
	}
}

func TestGatewayEnrollment(t *testing.T) {
	h, a, _ := newAuthority(t, storetest.OpenSQLite(t))
	_ = h
	creds := devicestest.EnrollGateway(t, a, "gw-ward5")
	cert := creds.Certificate
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("gateway certificate usages = %v, want server and client auth", cert.ExtKeyUsage)
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("gateway certificate does not name 127.0.0.1: %v", err)
	}
	id, err := devices.IdentityOf(cert)
	if err != nil || id.Kind != devices.KindGateway || id.Serial != "gw-ward5" || id.Patient != "" {
		t.Errorf("gateway identity = %+v, %v", id, err)
	}
	tok, _ := a.IssueToken(context.Background(), devices.TokenRequest{Kind: devices.KindGateway, Model: "gw-a", By: "x"})
	csr, _ := devices.CreateGatewayCSR(mustKey(t), "gw-b", []string{"localhost"})
	if _, err := a.Enroll(context.Background(), tok.Secret, csr); !errors.Is(err, devices.ErrBadRequest) {
		t.Errorf("gateway named differently from its token: got %v, want ErrBadRequest", err)
	}
}

func TestStatusChangesAndList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h, a, _ := newAuthority(t, db)
		ctx := context.Background()
		p := h.Patient(t)
		for _, s := range []string{"SN-A", "SN-B", "SN-C"} {
			devicestest.EnrollDevice(t, a, p.ID, s, device.KeyP256, nil)
		}
		rev0, _ := a.Revision(ctx)
		steps := []struct {
			serial string
			to     devices.Status
			want   error
		}{
			{"SN-A", devices.StatusSuspended, nil},
			{"SN-A", devices.StatusSuspended, devices.ErrTransition},
			{"SN-A", devices.StatusActive, nil},
			{"SN-B", devices.StatusRevoked, nil},
			{"SN-B", devices.StatusActive, devices.ErrTransition},
			{"SN-C", devices.StatusLost, nil},
			{"SN-C", devices.StatusSuspended, devices.ErrTransition},
			{"SN-Z", devices.StatusRevoked, devices.ErrUnknownDevice},
		}
		for _, st := range steps {
			_, err := a.SetStatus(ctx, st.serial, st.to, "test step", "cli:officer")
			if !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
				t.Errorf("SetStatus(%s, %s) = %v, want %v", st.serial, st.to, err, st.want)
			}
		}
		if rev, _ := a.Revision(ctx); rev != rev0+4 {
			t.Errorf("revision went from %d to %d, want +4 (one per change)", rev0, rev)
		}
		body, sig, err := a.SignedStatusList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, err := devices.OpenStatusList(body, sig, a.CA())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]devices.Status{"SN-B": devices.StatusRevoked, "SN-C": devices.StatusLost}
		if diff := cmp.Diff(want, l.Index()); diff != "" {
			t.Errorf("status list (-want +got):\n%s", diff)
		}
		tampered := []byte(strings.Replace(string(body), "revoked", "active!", 1))
		if _, err := devices.OpenStatusList(tampered, sig, a.CA()); !errors.Is(err, devices.ErrStatusListInvalid) {
			t.Errorf("tampered list: got %v, want ErrStatusListInvalid", err)
		}
		d, _ := a.Device(ctx, "SN-B")
		if err := d.Check(); phd.ReasonOf(err) != devices.ReasonDeviceRevoked {
			t.Errorf("revoked device Check = %v, want device-revoked", err)
		}
	})
}

func TestRenew(t *testing.T) {
	h, a, c := newAuthority(t, storetest.OpenSQLite(t))
	ctx := context.Background()
	p := h.Patient(t)
	creds := devicestest.EnrollDevice(t, a, p.ID, "SN-R", device.KeyEd25519, nil)
	id, _ := creds.Identity()
	c.t = c.t.Add(6 * 24 * time.Hour)
	if !creds.RenewalDue(c.t) {
		t.Errorf("RenewalDue after 6 of 7 days = false")
	}
	csr, _ := device.CreateCSR(creds.Key, "SN-R", "HEM-9200T")
	iss, err := a.Renew(ctx, id, csr)
	if err != nil {
		t.Fatal(err)
	}
	if !iss.Certificate.NotAfter.After(creds.Certificate.NotAfter) {
		t.Errorf("renewed certificate ends %s, not after the old %s", iss.Certificate.NotAfter, creds.Certificate.NotAfter)
	}
	otherKey, _ := device.GenerateKey(device.KeyEd25519)
	otherCSR, _ := device.CreateCSR(otherKey, "SN-R", "HEM-9200T")
	if _, err := a.Renew(ctx, id, otherCSR); !errors.Is(err, devices.ErrBadRequest) {
		t.Errorf("renewal with another key: got %v, want ErrBadRequest", err)
	}
	if _, err := a.SetStatus(ctx, "SN-R", devices.StatusSuspended, "lost contact", "cli:officer"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Renew(ctx, id, csr); !errors.Is(err, devices.ErrInactive) {
		t.Errorf("renewal of a suspended device: got %v, want ErrInactive", err)
	}
}

func TestVerifierReasons(t *testing.T) {
	h, a, _ := newAuthority(t, storetest.OpenSQLite(t))
	p := h.Patient(t)
	creds := devicestest.EnrollDevice(t, a, p.ID, "SN-V", device.KeyP256, nil)
	v := devices.NewVerifier(a.CA())
	foreign := selfSigned(t, "SN-V")
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		at   time.Time
		want phd.Reason
	}{
		{"valid", creds.Certificate, time.Now(), ""},
		{"expired", creds.Certificate, time.Now().Add(8 * 24 * time.Hour), devices.ReasonCertificateExpired},
		{"another CA", foreign, time.Now(), devices.ReasonCertificateUntrusted},
		{"none", nil, time.Now(), devices.ReasonCertificateMissing},
	} {
		_, err := v.Verify(tt.cert, tt.at)
		if got := reasonOrEmpty(err); got != tt.want {
			t.Errorf("%s: reason %q, want %q (%v)", tt.name, got, tt.want, err)
		}
	}
}

func reasonOrEmpty(err error) phd.Reason {
	if err == nil {
		return ""
	}
	return phd.ReasonOf(err)
}

func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	k := mustKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestEverythingAudited: token, enrollment (and a refused one), renewal
// and status change each leave an event, and the log still verifies.
func TestEverythingAudited(t *testing.T) {
	h, a, _ := newAuthority(t, storetest.OpenSQLite(t))
	ctx := context.Background()
	p := h.Patient(t)
	creds := devicestest.EnrollDevice(t, a, p.ID, "SN-AU", device.KeyP256, nil)
	a.Enroll(ctx, "mset1-forged", []byte("x"))
	id, _ := creds.Identity()
	csr, _ := device.CreateCSR(creds.Key, "SN-AU", "HEM-9200T")
	if _, err := a.Renew(ctx, id, csr); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetStatus(ctx, "SN-AU", devices.StatusRevoked, "patient discharged", "cli:officer"); err != nil {
		t.Fatal(err)
	}
	h.Audit.Close(ctx)
	var got []string
	audit.Scan(ctx, h.DB, "main", 0, 0, func(e audit.Event) error {
		if strings.HasPrefix(e.Action, "device.") {
			got = append(got, e.Action+" "+e.Outcome+" "+e.Patient)
		}
		return nil
	})
	want := []string{
		"device.enrollment-token success " + p.Pseudonym,
		"device.enroll success " + p.Pseudonym,
		"device.enroll denied ",
		"device.renew success " + p.Pseudonym,
		"device.revoke success " + p.Pseudonym,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("device audit events (-want +got):\n%s", diff)
	}
	if v, err := h.Verifier.Verify(ctx); err != nil || !v.OK {
		t.Errorf("audit log does not verify: %v %+v", err, v)
	}
}

// TestCAKeyNeverStored: the CA survives a reopen (same certificate) and its
// private scalar appears nowhere in the database file.
func TestCAKeyNeverStored(t *testing.T) {
	dir := t.TempDir()
	db := openSQLiteAt(t, filepath.Join(dir, "medsec.db"))
	h, a, _ := newAuthority(t, db)
	b, err := devices.Open(context.Background(), devices.Config{DB: db, Keys: h.Keys, Audit: h.Audit, Door: h.Door})
	if err != nil {
		t.Fatal(err)
	}
	if !a.CA().Equal(b.CA()) {
		t.Errorf("reopening made a different CA certificate")
	}
	secret, err := h.Keys.SystemKey(context.Background(), "device-ca")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := devices.DeriveP256(secret, "device-ca")
	scalar, _ := key.Bytes()
	db.Compact(context.Background())
	for _, name := range []string{"medsec.db", "medsec.db-wal"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if strings.Contains(string(data), string(scalar)) || strings.Contains(string(data), string(secret)) {
			t.Errorf("%s holds the CA key or its secret in plaintext", name)
		}
	}
}
