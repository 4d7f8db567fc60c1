package devices

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/medsec/medsec/internal/store"
)

// secretCA names the system secret the CA key is derived from.
const secretCA = "device-ca"

// DeriveP256 derives an ECDSA P-256 key from a 32-byte secret with
// HKDF-SHA-256, so a key wrapped by the KEK never needs its own storage.
// The label separates keys derived from one secret; a derived scalar that
// is not a valid key (chance about 2^-32) moves on to the next counter.
func DeriveP256(secret []byte, label string) (*ecdsa.PrivateKey, error) {
	for i := range 16 {
		d, err := hkdf.Key(sha256.New, secret, nil, fmt.Sprintf("medsec %s %d", label, i), 32)
		if err != nil {
			return nil, err
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("derive %s key: no valid scalar", label)
}

func (a *Authority) loadCA(ctx context.Context) error {
	secret, err := a.cfg.Keys.SystemKey(ctx, secretCA)
	if err != nil {
		return err
	}
	if a.caKey, err = DeriveP256(secret, secretCA); err != nil {
		return err
	}
	der, err := a.storedCA(ctx)
	if errors.Is(err, store.ErrNotFound) {
		der, err = a.createCA(ctx)
	}
	if err != nil {
		return err
	}
	return a.useCA(der)
}

func (a *Authority) storedCA(ctx context.Context) ([]byte, error) {
	var der []byte
	err := a.cfg.DB.QueryRow(ctx, `SELECT cert FROM device_ca WHERE name = ?`, secretCA).Scan(&der)
	return der, err
}

// createCA makes the self-signed CA certificate. Two processes racing here
// both derive the same key; the loser reads the winner's certificate.
func (a *Authority) createCA(ctx context.Context) ([]byte, error) {
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{a.cfg.Organization}, CommonName: "medsec device CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &a.caKey.PublicKey, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("create device CA certificate: %w", err)
	}
	_, err = a.cfg.DB.Exec(ctx, `INSERT INTO device_ca (name, cert, created_at) VALUES (?, ?, ?)`, secretCA, der, now.UnixNano())
	if errors.Is(err, store.ErrConflict) {
		return a.storedCA(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("store device CA certificate: %w", err)
	}
	return der, nil
}

func (a *Authority) useCA(der []byte) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse device CA certificate: %w", err)
	}
	if !a.caKey.PublicKey.Equal(cert.PublicKey) {
		return errors.New("the stored device CA certificate does not match the CA key (was the key file replaced?)")
	}
	a.caCert = cert
	a.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

// sign issues a certificate from tmpl for pub.
func (a *Authority) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, pub, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}
