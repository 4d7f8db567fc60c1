package devices

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Sentinel errors callers branch on.
var (
	// ErrTokenInvalid: the enrollment token is unknown, already used or
	// expired (one error for all three, so a guesser learns nothing). Ask
	// the hospital for a new token. HTTP 403.
	ErrTokenInvalid = errors.New("enrollment token is unknown, used or expired")
	// ErrUnknownDevice: no device or gateway with that serial. HTTP 404.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrEnrolled: the serial is enrolled already; a device keeps its
	// identity for life (renew it, or retire it and enrol a new serial).
	// HTTP 409.
	ErrEnrolled = errors.New("device serial is enrolled already")
	// ErrInactive: the device is suspended, revoked or lost and may not
	// renew or send. HTTP 403.
	ErrInactive = errors.New("device is not active")
	// ErrBadRequest: the certificate request or the command is malformed or
	// does not match the token; the message says what to fix. HTTP 400.
	ErrBadRequest = errors.New("bad device request")
	// ErrTransition: the status change is not allowed (revoked and lost are
	// final). HTTP 409.
	ErrTransition = errors.New("status change not allowed")
)

// Default lifetimes. Device certificates are short-lived so that a device
// that stops renewing drops out on its own; gateways, hospital
// infrastructure, live longer.
const (
	DefaultDeviceCertTTL  = 7 * 24 * time.Hour
	DefaultGatewayCertTTL = 30 * 24 * time.Hour
	DefaultTokenTTL       = 24 * time.Hour
	caLifetime            = 10 * 365 * 24 * time.Hour
)

// Config assembles an Authority from an open installation's parts.
type Config struct {
	DB    *store.DB
	Keys  *keys.Keyring
	Audit *audit.Log
	// Door turns a patient id into the pseudonym a certificate carries.
	Door *records.Door
	// Organization names the hospital in certificates.
	Organization   string
	DeviceCertTTL  time.Duration
	GatewayCertTTL time.Duration
	Now            func() time.Time
}

// Authority is the device CA and registry of one installation. It is safe
// for concurrent use and for several processes sharing one database.
type Authority struct {
	cfg    Config
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	caPEM  []byte
}

// Open loads the device CA, creating its certificate on first use. The CA
// key is derived from the system secret "device-ca", which the key
// provider keeps wrapped: no private key is ever written to disk.
func Open(ctx context.Context, cfg Config) (*Authority, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Audit == nil || cfg.Door == nil {
		return nil, errors.New("device authority: database, keys, audit log and door are required")
	}
	if cfg.Organization == "" {
		cfg.Organization = "medsec hospital"
	}
	if cfg.DeviceCertTTL <= 0 {
		cfg.DeviceCertTTL = DefaultDeviceCertTTL
	}
	if cfg.GatewayCertTTL <= 0 {
		cfg.GatewayCertTTL = DefaultGatewayCertTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authority{cfg: cfg}
	if err := a.loadCA(ctx); err != nil {
		return nil, fmt.Errorf("device authority: %w", err)
	}
	return a, nil
}

// CA is the device CA certificate: devices and gateways verify each other
// with it, and the hospital server verifies gateways.
func (a *Authority) CA() *x509.Certificate { return a.caCert }

// CAPEM is the CA certificate in PEM form.
func (a *Authority) CAPEM() []byte { return a.caPEM }

// Pool is a certificate pool holding the CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.caCert)
	return p
}

func (a *Authority) now() time.Time { return a.cfg.Now() }
