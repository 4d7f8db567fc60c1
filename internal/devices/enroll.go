package devices

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store"
)

// Issued is a certificate the authority issued, with the CA to trust.
type Issued struct {
	Device      Device
	Certificate *x509.Certificate
	// CertificatePEM holds the certificate; CAPEM the device CA.
	CertificatePEM []byte
	CAPEM          []byte
}

// request is what a certificate request asks for, whoever made it.
type request struct {
	kind   Kind
	serial string // device serial or gateway name
	model  string
	pub    crypto.PublicKey
	dns    []string
	ips    []net.IP
}

// boundName is what a token must have been issued for: the device model,
// or the gateway's name.
func (r request) boundName() string {
	if r.kind == KindGateway {
		return r.serial
	}
	return r.model
}

// Enroll trades a token and a PKCS#10 request for a certificate bound to
// the token's patient (devices) or name (gateways), and registers the
// device. The request's signature proves possession of the key. Every
// attempt is audited, refused ones included.
func (a *Authority) Enroll(ctx context.Context, token string, csrDER []byte) (*Issued, error) {
	iss, err := a.enroll(ctx, token, csrDER)
	if err != nil {
		ev := audit.Event{Time: a.now(), Actor: "system:devices", Action: "device.enroll", Outcome: audit.Denied, Reason: err.Error()}
		if errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrBadRequest) || errors.Is(err, ErrEnrolled) {
			if _, aerr := a.cfg.Audit.Append(ctx, ev); aerr != nil {
				return nil, errors.Join(err, aerr)
			}
		}
		return nil, err
	}
	return iss, nil
}

func (a *Authority) enroll(ctx context.Context, token string, csrDER []byte) (*Issued, error) {
	var iss *Issued
	err := a.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		grant, err := a.redeem(ctx, tx, token, "")
		if err != nil {
			return err
		}
		req, err := parseRequest(grant.kind, csrDER)
		if err != nil {
			return err
		}
		if named := req.boundName(); named != grant.model {
			return fmt.Errorf("%w: the request names %s, the token was issued for %s", ErrBadRequest, named, grant.model)
		}
		iss, err = a.register(ctx, tx, grant, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return iss, nil
}

func parseRequest(kind Kind, der []byte) (request, error) {
	if kind == KindGateway {
		return parseGatewayCSR(der)
	}
	info, err := device.ParseCSR(der)
	if err != nil {
		return request{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return request{kind: KindDevice, serial: info.Serial, model: info.Model, pub: info.PublicKey}, nil
}

// register issues the first certificate and inserts the registry entry.
func (a *Authority) register(ctx context.Context, tx *store.Tx, g tokenGrant, req request) (*Issued, error) {
	cert, err := a.issue(req, g.patient)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(req.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrBadRequest, err)
	}
	now := a.now()
	d := Device{Serial: req.serial, Kind: req.kind, Model: req.model, Patient: g.patient, Status: StatusActive,
		CertSerial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter, EnrolledAt: now.UTC(), ChangedAt: now.UTC(), PublicKey: req.pub}
	_, err = tx.Exec(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		d.Serial, string(d.Kind), d.Model, d.Patient, string(d.Status), "", pub, d.CertSerial,
		d.NotAfter.UnixNano(), now.UnixNano(), now.UnixNano())
	if errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("%w: %s", ErrEnrolled, d.Serial)
	}
	if err != nil {
		return nil, fmt.Errorf("register device %s: %w", d.Serial, err)
	}
	ev := audit.Event{Time: now, Actor: "system:devices", Action: "device.enroll", Patient: d.Patient,
		Resource: string(d.Kind) + "/" + d.Serial, Outcome: audit.Success,
		Reason: fmt.Sprintf("model %s, certificate %s valid until %s", d.Model, d.CertSerial, d.NotAfter.Format(time.RFC3339))}
	if _, err := a.cfg.Audit.AppendTx(ctx, tx, ev); err != nil {
		return nil, err
	}
	return a.issued(d, cert), nil
}

func (a *Authority) issued(d Device, cert *x509.Certificate) *Issued {
	return &Issued{Device: d, Certificate: cert, CAPEM: a.caPEM,
		CertificatePEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
}

// issue signs the certificate of a request: CN and serialNumber carry the
// serial (or gateway name); URIs carry the model and the patient pseudonym
// (devices) or the gateway mark; gateways also get server names so devices
// can verify them.
func (a *Authority) issue(req request, patient string) (*x509.Certificate, error) {
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{a.cfg.Organization}, CommonName: req.serial, SerialNumber: req.serial},
		NotBefore:    now.Add(-5 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	switch req.kind {
	case KindDevice:
		tmpl.NotAfter = now.Add(a.cfg.DeviceCertTTL)
		tmpl.URIs = []*url.URL{urn(ModelURIPrefix, req.model), urn(PatientURIPrefix, patient)}
	case KindGateway:
		tmpl.NotAfter = now.Add(a.cfg.GatewayCertTTL)
		tmpl.URIs = []*url.URL{urn(GatewayURIPrefix, req.serial)}
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames, tmpl.IPAddresses = req.dns, req.ips
	}
	return a.sign(tmpl, req.pub)
}

// Renew issues a fresh certificate to an active device or gateway that
// presents its current, valid certificate (verified by the caller's TLS
// handshake and Verifier) and a request for the same key. A device that
// wants a new key enrols anew under a new serial.
func (a *Authority) Renew(ctx context.Context, current Identity, csrDER []byte) (*Issued, error) {
	req, err := parseRequest(current.Kind, csrDER)
	if err != nil {
		return nil, err
	}
	if req.serial != current.Serial {
		return nil, fmt.Errorf("%w: the request names %s, the certificate %s", ErrBadRequest, req.serial, current.Serial)
	}
	var iss *Issued
	err = a.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		d, err := a.device(ctx, tx, current.Serial)
		if err != nil {
			return err
		}
		if err := checkRenewal(d, current, req); err != nil {
			return err
		}
		iss, err = a.reissue(ctx, tx, d, req)
		return err
	})
	return iss, err
}

func checkRenewal(d Device, current Identity, req request) error {
	if d.Status != StatusActive {
		return fmt.Errorf("%w: %s is %s", ErrInactive, d.Serial, d.Status)
	}
	k, ok := d.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(req.pub) || !k.Equal(current.PublicKey) {
		return fmt.Errorf("%w: renewal keeps the enrolled key; enrol a new serial to change keys", ErrBadRequest)
	}
	if d.Kind == KindDevice && (req.model != d.Model || current.Patient != d.Patient) {
		return fmt.Errorf("%w: renewal cannot change the model or the patient", ErrBadRequest)
	}
	return nil
}

func (a *Authority) reissue(ctx context.Context, tx *store.Tx, d Device, req request) (*Issued, error) {
	cert, err := a.issue(req, d.Patient)
	if err != nil {
		return nil, err
	}
	d.CertSerial, d.NotAfter = cert.SerialNumber.Text(16), cert.NotAfter
	_, err = tx.Exec(ctx, `UPDATE devices SET cert_serial = ?, not_after = ? WHERE serial = ?`, d.CertSerial, d.NotAfter.UnixNano(), d.Serial)
	if err != nil {
		return nil, fmt.Errorf("renew device %s: %w", d.Serial, err)
	}
	ev := audit.Event{Time: a.now(), Actor: string(d.Kind) + ":" + d.Serial, Action: "device.renew", Patient: d.Patient,
		Resource: string(d.Kind) + "/" + d.Serial, Outcome: audit.Success,
		Reason: fmt.Sprintf("certificate %s valid until %s", d.CertSerial, d.NotAfter.Format(time.RFC3339))}
	if _, err := a.cfg.Audit.AppendTx(ctx, tx, ev); err != nil {
		return nil, err
	}
	return a.issued(d, cert), nil
}

// CreateGatewayCSR builds a gateway's certificate request: its name as CN,
// the gateway URI, and the host names and addresses devices reach it by.
func CreateGatewayCSR(key crypto.Signer, name string, hosts []string) ([]byte, error) {
	if err := checkLabel("gateway name", name); err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name, SerialNumber: name},
		URIs:    []*url.URL{urn(GatewayURIPrefix, name)},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create gateway csr for %s: %w", name, err)
	}
	return der, nil
}

func acceptedKey(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return true
	}
	return false
}

func parseGatewayCSR(der []byte) (request, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return request{}, fmt.Errorf("%w: parse gateway csr: %w", ErrBadRequest, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return request{}, fmt.Errorf("%w: gateway csr signature: %w", ErrBadRequest, err)
	}
	name := csr.Subject.CommonName
	if err := checkLabel("gateway name", name); err != nil {
		return request{}, err
	}
	if len(csr.URIs) != 1 || csr.URIs[0].String() != GatewayURIPrefix+name {
		return request{}, fmt.Errorf("%w: gateway csr must carry exactly the URI %s%s", ErrBadRequest, GatewayURIPrefix, name)
	}
	if !acceptedKey(csr.PublicKey) {
		return request{}, fmt.Errorf("%w: gateway key %T is not P-256 or Ed25519", ErrBadRequest, csr.PublicKey)
	}
	if len(csr.DNSNames)+len(csr.IPAddresses) == 0 {
		return request{}, fmt.Errorf("%w: gateway csr names no host or address for devices to reach it", ErrBadRequest)
	}
	return request{kind: KindGateway, serial: name, pub: csr.PublicKey, dns: csr.DNSNames, ips: csr.IPAddresses}, nil
}
