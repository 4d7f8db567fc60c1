package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/medsec/medsec/internal/config"
	"github.com/medsec/medsec/internal/keys"
)

// LoadOrCreateCertificate loads the configured server certificate or, when
// none is configured, a self-signed one kept in DIR/tls (made on first use,
// key mode 0600) for loopback and the hospital's own network.
func LoadOrCreateCertificate(cfg *config.Config) (tls.Certificate, error) {
	if cfg.Server.TLSCert != "" || cfg.Server.TLSKey != "" {
		c, err := tls.LoadX509KeyPair(cfg.Path(cfg.Server.TLSCert), cfg.Path(cfg.Server.TLSKey))
		if err != nil {
			return c, fmt.Errorf("server certificate: %w", err)
		}
		return c, nil
	}
	certFile, keyFile := cfg.Path("tls/server.crt"), cfg.Path("tls/server.key")
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("server certificate %s: %w", certFile, err)
	}
	certPEM, keyPEM, err := SelfSigned(cfg.Hospital.Name, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return c, err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return c, err
	}
	if err := keys.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return c, err
	}
	if err := keys.WriteFileAtomic(certFile, certPEM, 0o644); err != nil {
		return c, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// SelfSigned makes an ECDSA P-256 server certificate valid for a year.
func SelfSigned(org string, names []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{org}, CommonName: "medsec server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
