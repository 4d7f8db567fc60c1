package device

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"strings"
)

// ModelURIPrefix starts the URI subject alternative name that carries the
// device model in a certificate request ("urn:medsec:device-model:HEM-9200T").
const ModelURIPrefix = "urn:medsec:device-model:"

// CreateCSR builds a PKCS#10 certificate request for the device key: the
// subject's common name and serialNumber are the device serial (which is
// also its device id in every message), the model travels as a URI SAN.
// The request's signature proves the device holds the private key.
func CreateCSR(key crypto.Signer, serial, model string) ([]byte, error) {
	if err := checkLabel("serial", serial); err != nil {
		return nil, err
	}
	if err := checkLabel("model", model); err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: serial, SerialNumber: serial},
		URIs:    []*url.URL{{Scheme: "urn", Opaque: strings.TrimPrefix(ModelURIPrefix, "urn:") + model}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create csr for %s: %w", serial, err)
	}
	return der, nil
}

// CSRInfo is what a certificate request says, once its signature checked.
type CSRInfo struct {
	Serial    string
	Model     string
	PublicKey crypto.PublicKey // *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

// ParseCSR reads a request made by CreateCSR, checks its signature (proof
// of possession) and the key kind, and returns the serial and model. The
// device CA calls this before it binds the key to a patient.
func ParseCSR(der []byte) (*CSRInfo, error) {
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("parse csr: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("parse csr: signature: %w", err)
	}
	if !acceptedKey(req.PublicKey) {
		return nil, fmt.Errorf("parse csr: %T is not a P-256 or Ed25519 key", req.PublicKey)
	}
	info := &CSRInfo{Serial: req.Subject.SerialNumber, PublicKey: req.PublicKey}
	if req.Subject.CommonName != info.Serial {
		return nil, fmt.Errorf("parse csr: common name and serialNumber differ")
	}
	if info.Model, err = modelOf(req.URIs); err != nil {
		return nil, err
	}
	if err := checkLabel("serial", info.Serial); err != nil {
		return nil, err
	}
	return info, checkLabel("model", info.Model)
}

func modelOf(uris []*url.URL) (string, error) {
	if len(uris) != 1 || !strings.HasPrefix(uris[0].String(), ModelURIPrefix) {
		return "", fmt.Errorf("parse csr: want exactly one %s… URI", ModelURIPrefix)
	}
	return strings.TrimPrefix(uris[0].String(), ModelURIPrefix), nil
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

// checkLabel keeps serials and models to the alphabet device ids use in
// message headers, logs and metric labels.
func checkLabel(what, s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("device %s must be 1..64 characters", what)
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return fmt.Errorf("device %s may hold only letters, digits and . _ : -", what)
		}
	}
	return nil
}
