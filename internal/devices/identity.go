package devices

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
)

// Kind says what a registry entry is.
type Kind string

// Kinds of enrolled things.
const (
	KindDevice  Kind = "device"  // a personal health device, bound to one patient
	KindGateway Kind = "gateway" // a security gateway, hospital infrastructure
)

// URI subject alternative names that carry an identity's binding. The
// model URI is the one the device SDK puts in its request.
const (
	PatientURIPrefix = "urn:medsec:patient:"
	GatewayURIPrefix = "urn:medsec:gateway:"
	ModelURIPrefix   = device.ModelURIPrefix
)

// Reasons this package adds to those of package phd. Like those they are
// stable, lowercase and carry no PHI; gateways and the server answer with
// them and count them.
const (
	ReasonCertificateMissing   phd.Reason = "certificate-missing"   // no client certificate presented
	ReasonCertificateUntrusted phd.Reason = "certificate-untrusted" // not issued by the device CA, or not for this use
	ReasonCertificateExpired   phd.Reason = "certificate-expired"   // renew the device's certificate
	ReasonDeviceUnknown        phd.Reason = "device-unknown"        // not in the registry
	ReasonDeviceSuspended      phd.Reason = "device-suspended"      // the hospital suspended it; ask them
	ReasonDeviceRevoked        phd.Reason = "device-revoked"        // permanently withdrawn
	ReasonDeviceLost           phd.Reason = "device-lost"           // reported lost or stolen
	ReasonGatewayUntrusted     phd.Reason = "gateway-untrusted"     // the upstream caller is not an active gateway
	ReasonTokenInvalid         phd.Reason = "token-invalid"         // enrollment token unknown, used or expired
	ReasonBadRequest           phd.Reason = "bad-request"           // the request is malformed; the detail says how
	ReasonDeviceEnrolled       phd.Reason = "device-enrolled"       // the serial is enrolled already
	ReasonDeviceInactive       phd.Reason = "device-inactive"       // a non-active device may not renew
	ReasonStatusFinal          phd.Reason = "status-final"          // revoked and lost cannot change
)

// Identity is what a verified certificate says about its holder.
type Identity struct {
	Kind      Kind
	Serial    string // device serial or gateway name: the certificate's CN
	Model     string // device model ("" for gateways)
	Patient   string // patient pseudonym the device speaks for ("" for gateways)
	NotAfter  time.Time
	PublicKey crypto.PublicKey
}

// IdentityOf reads the identity a certificate of this CA carries. It does
// not verify the certificate (Verifier does).
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	id := Identity{Serial: cert.Subject.CommonName, NotAfter: cert.NotAfter, PublicKey: cert.PublicKey}
	for _, u := range cert.URIs {
		s := u.String()
		switch {
		case strings.HasPrefix(s, PatientURIPrefix):
			id.Patient = strings.TrimPrefix(s, PatientURIPrefix)
		case strings.HasPrefix(s, ModelURIPrefix):
			id.Model = strings.TrimPrefix(s, ModelURIPrefix)
		case strings.HasPrefix(s, GatewayURIPrefix):
			id.Kind = KindGateway
		}
	}
	if id.Kind == "" && id.Patient != "" && id.Model != "" {
		id.Kind = KindDevice
	}
	if id.Kind == "" || id.Serial == "" {
		return Identity{}, errors.New("certificate carries no medsec device or gateway identity")
	}
	return id, nil
}

func urn(prefix, value string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: strings.TrimPrefix(prefix, "urn:") + value}
}

// Verifier checks client certificates against the device CA. It is what a
// gateway uses for devices and the server for gateways.
type Verifier struct {
	roots *x509.CertPool
}

// NewVerifier trusts certificates issued by ca.
func NewVerifier(ca *x509.Certificate) *Verifier {
	p := x509.NewCertPool()
	p.AddCert(ca)
	return &Verifier{roots: p}
}

// Verify checks the chain and validity of cert at now, for client use,
// and returns its identity. Errors are *phd.Error with
// certificate-expired or certificate-untrusted.
func (v *Verifier) Verify(cert *x509.Certificate, now time.Time) (Identity, error) {
	if cert == nil {
		return Identity{}, &phd.Error{Reason: ReasonCertificateMissing, Detail: "present the certificate the hospital issued"}
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: v.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return Identity{}, &phd.Error{Reason: ReasonCertificateExpired,
			Detail: fmt.Sprintf("certificate of %s is not valid now (valid %s to %s); renew it", cert.Subject.CommonName,
				cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		return Identity{}, &phd.Error{Reason: ReasonCertificateUntrusted, Detail: "certificate is not issued by this hospital's device CA", Err: err}
	}
	id, err := IdentityOf(cert)
	if err != nil {
		return Identity{}, &phd.Error{Reason: ReasonCertificateUntrusted, Detail: err.Error()}
	}
	return id, nil
}
