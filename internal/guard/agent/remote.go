package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// ServerConfig says where the agent reports: the hospital server's alert
// endpoint, over mutual TLS with the certificate `medsec guard enroll`
// issued for this workstation.
type ServerConfig struct {
	URL  string `yaml:"url"`  // e.g. https://pacs-server:8443/guard/alerts
	Cert string `yaml:"cert"` // the workstation's certificate (PEM)
	Key  string `yaml:"key"`  // its private key (PEM, keep it 0600)
	// CA is the PEM file that vouches for the server's certificate: the
	// server.crt that enrol wrote for a self-signed server; empty to use
	// the system's roots.
	CA string `yaml:"ca"`
	// MaxPending bounds the alerts kept while the server is unreachable;
	// DefaultMaxPending when 0.
	MaxPending int `yaml:"max_pending"`
}

// DefaultMaxPending alerts wait for an unreachable server before the
// agent stops with an error.
const DefaultMaxPending = 10000

// MaxBatch is the most alerts one delivery carries; the server refuses
// more.
const MaxBatch = 500

// Report is an alert as it travels to the server: an id makes a resend
// after a lost answer harmless (the server drops what it has).
type Report struct {
	ID string `json:"id"`
	Alert
}

// Batch is the body of one delivery.
type Batch struct {
	Alerts []Report `json:"alerts"`
}

// Receipt is the server's answer to a delivery.
type Receipt struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// ErrBacklog means more alerts waited for the server than MaxPending: the
// agent stops rather than lose alerts silently.
var ErrBacklog = errors.New("alerts could not be delivered and the backlog is full")

// Remote sends alerts to the hospital server over mutual TLS. Alerts the
// server does not take (down, unreachable) wait and go with the next
// delivery or Flush, in order.
type Remote struct {
	url    string
	client *http.Client
	max    int
	// Warn is told about a delivery that failed (nil: silent); the
	// alerts wait.
	Warn func(error)

	mu      sync.Mutex
	pending []Report
}

// NewRemote loads the workstation's certificate and the server's trust.
func NewRemote(cfg ServerConfig) (*Remote, error) {
	if cfg.URL == "" || cfg.Cert == "" || cfg.Key == "" {
		return nil, fmt.Errorf("%w: server needs url, cert and key", ErrConfig)
	}
	cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: workstation certificate: %v", ErrConfig, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	if cfg.CA != "" {
		if tc.RootCAs, err = loadPool(cfg.CA); err != nil {
			return nil, err
		}
	}
	max := cfg.MaxPending
	if max <= 0 {
		max = DefaultMaxPending
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConns: 2, IdleConnTimeout: time.Minute}
	return &Remote{url: cfg.URL, max: max, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: server CA: %v", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: server CA %s holds no PEM certificate", ErrConfig, path)
	}
	return pool, nil
}

// Send queues alerts and delivers everything waiting. A failed delivery
// keeps the alerts for the next one and is not an error, unless the
// backlog is over its limit (ErrBacklog).
func (r *Remote) Send(ctx context.Context, alerts []Alert) error {
	r.mu.Lock()
	for _, a := range alerts {
		r.pending = append(r.pending, Report{ID: newReportID(), Alert: a})
	}
	over := len(r.pending) - r.max
	r.mu.Unlock()
	err := r.Flush(ctx)
	if err != nil && r.Warn != nil {
		r.Warn(err)
	}
	if over > 0 {
		return fmt.Errorf("%w: %d alerts waiting, limit %d (last error: %v)", ErrBacklog, over+r.max, r.max, err)
	}
	return nil
}

// Pending is how many alerts wait for the server.
func (r *Remote) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Flush delivers the waiting alerts, MaxBatch at a time, and returns the
// first failure; what was not delivered keeps waiting.
func (r *Remote) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.pending) > 0 {
		n := min(len(r.pending), MaxBatch)
		if err := r.deliver(ctx, r.pending[:n]); err != nil {
			return err
		}
		r.pending = r.pending[n:]
	}
	r.pending = nil
	return nil
}

func (r *Remote) deliver(ctx context.Context, reports []Report) error {
	body, err := json.Marshal(Batch{Alerts: reports})
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("deliver alerts: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("deliver alerts to %s: %w", r.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("deliver alerts to %s: server answered %s: %s", r.url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func newReportID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Tee sends alerts to every sink in order (the local log first, so an
// alert is on disk before the network is tried) and returns the first
// error after trying them all.
type Tee []Sink

// Send hands alerts to each sink.
func (t Tee) Send(ctx context.Context, alerts []Alert) error {
	var first error
	for _, s := range t {
		if err := s.Send(ctx, alerts); err != nil && first == nil {
			first = err
		}
	}
	return first
}
