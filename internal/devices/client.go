package devices

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/phd/device"
)

// Client talks to the device authority's API of a medsec server. HTTP
// must trust the server's TLS certificate and, for renewal and the status
// list, present the caller's own certificate.
type Client struct {
	HTTP    *http.Client
	BaseURL string // e.g. https://hospital.example:8443/devices
}

// NewClient returns a client for baseURL over TLS 1.3 trusting roots;
// creds (nil for enrollment) is presented as client certificate.
func NewClient(baseURL string, roots *x509.CertPool, creds *Credentials) *Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if creds != nil {
		cfg.Certificates = []tls.Certificate{creds.TLSCertificate()}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute}
	return &Client{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}, BaseURL: strings.TrimSuffix(baseURL, "/")}
}

// Enroll trades token and a DER certificate request for credentials
// (without the key, which the caller holds).
func (c *Client) Enroll(ctx context.Context, token string, csr []byte) (*Credentials, error) {
	return c.exchange(ctx, PathEnroll, csrJSON{Token: token, CSR: base64.StdEncoding.EncodeToString(csr)})
}

// Renew asks for a fresh certificate for the same key.
func (c *Client) Renew(ctx context.Context, csr []byte) (*Credentials, error) {
	return c.exchange(ctx, PathRenew, csrJSON{CSR: base64.StdEncoding.EncodeToString(csr)})
}

func (c *Client) exchange(ctx context.Context, path string, in csrJSON) (*Credentials, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("device authority: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, readRefusal(resp)
	}
	var out enrollmentJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("device authority answer: %w", err)
	}
	return out.credentials()
}

func (e enrollmentJSON) credentials() (*Credentials, error) {
	cert, err := ParseCertificatePEM([]byte(e.Certificate))
	if err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	ca, err := ParseCertificatePEM([]byte(e.CA))
	if err != nil {
		return nil, fmt.Errorf("device CA certificate: %w", err)
	}
	c := &Credentials{Certificate: cert, CA: ca}
	if e.HospitalKey != "" {
		if c.HospitalKey, err = ParseHospitalKeyPEM([]byte(e.HospitalKey)); err != nil {
			return nil, err
		}
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("issued certificate is not signed by the CA sent with it: %w", err)
	}
	return c, nil
}

// readRefusal turns a refused answer into a *Refusal error.
func readRefusal(resp *http.Response) error {
	var ref Refusal
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ref); err != nil || ref.Reason == "" {
		return fmt.Errorf("device authority answered %s", resp.Status)
	}
	return &ref
}

// StatusList fetches the signed status list when its revision differs
// from have; changed is false when the server's list is still have.
func (c *Client) StatusList(ctx context.Context, ca *x509.Certificate, have int64) (l StatusList, body, sig []byte, changed bool, err error) {
	url := c.BaseURL + PathStatus + "?revision=" + strconv.FormatInt(have, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return l, nil, nil, false, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return l, nil, nil, false, fmt.Errorf("device status list: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return l, nil, nil, false, nil
	case http.StatusOK:
	default:
		return l, nil, nil, false, readRefusal(resp)
	}
	if body, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20)); err != nil {
		return l, nil, nil, false, fmt.Errorf("device status list: %w", err)
	}
	if sig, err = base64.StdEncoding.DecodeString(resp.Header.Get(HeaderSignature)); err != nil {
		return l, nil, nil, false, ErrStatusListInvalid
	}
	l, err = OpenStatusList(body, sig, ca)
	return l, body, sig, err == nil, err
}

// EnrollDevice plays a device's side of enrollment: it makes a key pair of
// keyType, asks for a certificate for (serial, model) with token, and
// returns the full credentials.
func (c *Client) EnrollDevice(ctx context.Context, token, serial, model string, keyType device.KeyType) (*Credentials, error) {
	key, err := device.GenerateKey(keyType)
	if err != nil {
		return nil, err
	}
	csr, err := device.CreateCSR(key, serial, model)
	if err != nil {
		return nil, err
	}
	return c.withKey(key, func() (*Credentials, error) { return c.Enroll(ctx, token, csr) })
}

// EnrollGateway plays a gateway's side: a P-256 key pair and a request for
// name, reachable by devices at hosts.
func (c *Client) EnrollGateway(ctx context.Context, token, name string, hosts []string) (*Credentials, error) {
	key, err := device.GenerateKey(device.KeyP256)
	if err != nil {
		return nil, err
	}
	csr, err := CreateGatewayCSR(key, name, hosts)
	if err != nil {
		return nil, err
	}
	return c.withKey(key, func() (*Credentials, error) { return c.Enroll(ctx, token, csr) })
}

func (c *Client) withKey(key crypto.Signer, fn func() (*Credentials, error)) (*Credentials, error) {
	creds, err := fn()
	if err != nil {
		return nil, err
	}
	creds.Key = key
	return creds, nil
}
