package devices

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd/device"
)

// Credentials are what a device or a gateway keeps after enrollment: its
// own key (it never leaves), its certificate, the device CA, and for a
// device the hospital's ingestion key it encrypts readings to.
type Credentials struct {
	Key         crypto.Signer
	Certificate *x509.Certificate
	CA          *x509.Certificate
	HospitalKey *ecdh.PublicKey // devices only
}

// File names in a credentials directory.
const (
	fileKey         = "key.pem"
	fileCert        = "cert.pem"
	fileCA          = "ca.pem"
	fileHospitalKey = "hospital-key.pem"
)

// Save writes the credentials to dir (created 0700): the key readable by
// the owner only, every file replaced atomically.
func (c *Credentials) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := device.SaveKey(filepath.Join(dir, fileKey), c.Key); err != nil {
		return err
	}
	files := map[string][]byte{fileCert: certPEM(c.Certificate), fileCA: certPEM(c.CA)}
	if c.HospitalKey != nil {
		der, err := x509.MarshalPKIXPublicKey(c.HospitalKey)
		if err != nil {
			return fmt.Errorf("save hospital key: %w", err)
		}
		files[fileHospitalKey] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	for name, data := range files {
		if err := keys.WriteFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("save %s: %w", name, err)
		}
	}
	return nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// LoadCredentials reads what Save wrote. The hospital key is optional
// (gateways have none).
func LoadCredentials(dir string) (*Credentials, error) {
	key, err := device.LoadKey(filepath.Join(dir, fileKey))
	if err != nil {
		return nil, err
	}
	c := &Credentials{Key: key}
	if c.Certificate, err = ReadCertificate(filepath.Join(dir, fileCert)); err != nil {
		return nil, err
	}
	if c.CA, err = ReadCertificate(filepath.Join(dir, fileCA)); err != nil {
		return nil, err
	}
	if c.HospitalKey, err = readHospitalKey(filepath.Join(dir, fileHospitalKey)); err != nil {
		return nil, err
	}
	if !publicEqual(c.Certificate.PublicKey, key.Public()) {
		return nil, fmt.Errorf("credentials in %s: the certificate is not for the stored key", dir)
	}
	return c, nil
}

// ReadCertificate reads the first PEM certificate of a file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	return ParseCertificatePEM(data)
}

// ParseCertificatePEM parses the first PEM certificate in data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(block.Bytes)
}

func readHospitalKey(path string) (*ecdh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read hospital key: %w", err)
	}
	return ParseHospitalKeyPEM(data)
}

// ParseHospitalKeyPEM parses the hospital's ingestion public key (a P-256
// PKIX "PUBLIC KEY" block).
func ParseHospitalKeyPEM(data []byte) (*ecdh.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("hospital key: no PEM public key found")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("hospital key: %w", err)
	}
	var k *ecdh.PublicKey
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		k, err = p.ECDH()
	case *ecdh.PublicKey:
		k = p
	}
	if err != nil || k == nil || k.Curve() != ecdh.P256() {
		return nil, errors.New("hospital key: not a P-256 key (devices encrypt to P-256 only)")
	}
	return k, nil
}

// HospitalKeyPEM encodes an ingestion public key for devices.
func HospitalKeyPEM(pub *ecdh.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode hospital key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// Identity is what the certificate says.
func (c *Credentials) Identity() (Identity, error) { return IdentityOf(c.Certificate) }

// TLSCertificate is the certificate and key for a TLS handshake.
func (c *Credentials) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Certificate.Raw}, PrivateKey: c.Key, Leaf: c.Certificate}
}

// Pool holds the device CA, the root a device trusts its gateway by.
func (c *Credentials) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.CA)
	return p
}

// RenewalDue reports whether less than a third of the certificate's
// lifetime is left: time to renew, with room for outages.
func (c *Credentials) RenewalDue(now time.Time) bool {
	life := c.Certificate.NotAfter.Sub(c.Certificate.NotBefore)
	return c.Certificate.NotAfter.Sub(now) < life/3
}
