package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/phd"
)

// PathMessages is where devices post their messages.
const PathMessages = "/phd/v1/messages"

// Config configures a gateway.
type Config struct {
	// Dir holds the durable queue (queue.db).
	Dir string
	// Credentials are the gateway's own, issued by the hospital's device
	// CA: its server certificate for devices and client certificate for
	// the hospital. CredentialsDir, when set, is where renewed ones are
	// saved.
	Credentials    *devices.Credentials
	CredentialsDir string
	// Upstream is the hospital server's base URL (https://host:port);
	// UpstreamRoots the roots its TLS certificate is checked with.
	Upstream      string
	UpstreamRoots *x509.CertPool
	// Limits bound each message (default phd.DefaultLimits).
	Limits phd.Limits
	// DeviceRate and DeviceBurst limit each device's messages per second
	// (default 5 and 20; a negative rate turns the limit off).
	DeviceRate  float64
	DeviceBurst int
	// PollInterval is how often the status list is fetched (default 1 s).
	PollInterval time.Duration
	// Forwarders deliver in parallel (default 2); BundleSize messages at
	// most go in one delivery (default 256).
	Forwarders int
	BundleSize int
	Logger     *slog.Logger
	Now        func() time.Time
}

// Gateway is a running gateway's state.
type Gateway struct {
	cfg      Config
	name     string
	queue    *Queue
	verifier *devices.Verifier
	limiter  *limiter
	metrics  *metrics
	upstream *http.Client
	cert     atomic.Pointer[tls.Certificate]
	creds    atomic.Pointer[devices.Credentials]
	statuses atomic.Pointer[statusIndex]

	idMu sync.Mutex
	ids  map[[32]byte]devices.Identity // verified device certificates

	winMu   sync.Mutex
	windows map[string]*deviceWindow

	queued atomic.Int64

	sendMu     sync.Mutex
	sending    map[int64]bool // queue rows a forwarder holds
	leftBehind atomic.Bool    // some rows wait for another pass
}

type statusIndex struct {
	revision int64
	status   map[string]devices.Status
}

// Open opens the gateway's queue and state.
func Open(ctx context.Context, cfg Config) (*Gateway, error) {
	if err := defaults(&cfg); err != nil {
		return nil, err
	}
	id, err := cfg.Credentials.Identity()
	if err != nil || id.Kind != devices.KindGateway {
		return nil, fmt.Errorf("gateway: the credentials are not a gateway's (%v)", err)
	}
	q, err := OpenQueue(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, name: id.Serial, queue: q, verifier: devices.NewVerifier(cfg.Credentials.CA),
		limiter: newLimiter(cfg.DeviceRate, cfg.DeviceBurst), metrics: newMetrics(),
		ids: map[[32]byte]devices.Identity{}, windows: map[string]*deviceWindow{}, sending: map[int64]bool{}}
	g.useCredentials(cfg.Credentials)
	g.upstream = g.upstreamClient()
	if err := g.loadState(ctx); err != nil {
		q.Close()
		return nil, err
	}
	return g, nil
}

func defaults(cfg *Config) error {
	if cfg.Credentials == nil || cfg.Dir == "" || cfg.Upstream == "" {
		return errors.New("gateway: credentials, a data directory and an upstream URL are required")
	}
	if !strings.HasPrefix(cfg.Upstream, "https://") {
		return fmt.Errorf("gateway: upstream %q must be an https:// URL", cfg.Upstream)
	}
	cfg.Upstream = strings.TrimSuffix(cfg.Upstream, "/")
	if cfg.Limits.MaxMessageBytes == 0 {
		cfg.Limits = phd.DefaultLimits()
	}
	if cfg.DeviceRate == 0 {
		cfg.DeviceRate, cfg.DeviceBurst = 5, 20
	}
	if cfg.DeviceBurst <= 0 {
		cfg.DeviceBurst = max(1, int(cfg.DeviceRate))
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Forwarders <= 0 {
		cfg.Forwarders = 2
	}
	if cfg.BundleSize <= 0 {
		cfg.BundleSize = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// loadState restores the queue length and the saved status list.
func (g *Gateway) loadState(ctx context.Context) error {
	n, err := g.queue.Len(ctx)
	if err != nil {
		return err
	}
	g.queued.Store(int64(n))
	g.metrics.queued.Set(float64(n))
	g.statuses.Store(&statusIndex{status: map[string]devices.Status{}})
	body, sig, err := g.queue.StatusList(ctx)
	if err != nil || body == nil {
		return err
	}
	l, err := devices.OpenStatusList(body, sig, g.cfg.Credentials.CA)
	if err != nil {
		return fmt.Errorf("saved status list: %w", err)
	}
	g.useStatusList(l)
	return nil
}

// Name is the gateway's name (its certificate's CN).
func (g *Gateway) Name() string { return g.name }

// Queued is the number of messages waiting for the hospital.
func (g *Gateway) Queued() int64 { return g.queued.Load() }

// TLSConfig is the device-facing TLS configuration: TLS 1.3, the
// gateway's certificate, and a client certificate asked of every device
// (verified per request, so a refusal carries a reason code).
func (g *Gateway) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return g.cert.Load(), nil },
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// Handler is the device API.
func (g *Gateway) Handler() http.Handler {
	r := chi.NewRouter()
	r.Post(PathMessages, g.accept)
	return r
}

// MetricsHandler serves the gateway's Prometheus metrics.
func (g *Gateway) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{})
}

// Run serves devices on ln and forwards the queue (messages, and the
// records of refused ones for the hospital's audit log) to the hospital until
// ctx ends; then it stops taking messages, lets deliveries in progress
// finish (10 s at most) and closes the queue.
func (g *Gateway) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: g.Handler(), TLSConfig: g.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelDebug)}
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { g.forward(bg) })
	wg.Go(func() { g.forwardRefusals(bg) })
	wg.Go(func() { g.poll(bg) })
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
		<-errc
	}
	stopBG()
	wg.Wait()
	return errors.Join(err, g.queue.Close())
}

func (g *Gateway) now() time.Time { return g.cfg.Now() }

func (g *Gateway) useCredentials(c *devices.Credentials) {
	cert := c.TLSCertificate()
	g.cert.Store(&cert)
	g.creds.Store(c)
}
