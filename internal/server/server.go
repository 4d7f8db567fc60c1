// Package server is `medsec serve`: one HTTPS server (TLS 1.3, real
// certificates or a self-signed one made in the data directory) that hosts
// every network face of a hospital installation — the clinical records API,
// device-data ingestion from the gateways, the security console and the
// patient portal — behind common middleware (security headers, request
// limits, metrics). Each capability mounts its own handler; the server only
// wires them, so the one-door rule stays in the packages behind it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medsec/medsec/internal/hospital"
)

// Server is a configured, not yet listening, medsec server.
type Server struct {
	h        *hospital.Hospital
	router   chi.Router
	tls      *tls.Config
	registry *prometheus.Registry
	log      *slog.Logger
	limits   map[string]int64 // body limits of mounts, by pattern
}

// Options tunes a server.
type Options struct {
	// TLS replaces the configuration made from the data directory (tests,
	// mutual TLS for ingestion).
	TLS    *tls.Config
	Logger *slog.Logger
}

// New makes a server for an open installation.
func New(h *hospital.Hospital, opt Options) (*Server, error) {
	s := &Server{h: h, router: chi.NewRouter(), registry: prometheus.NewRegistry(), log: opt.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.tls = opt.TLS
	if s.tls == nil {
		cert, err := LoadOrCreateCertificate(h.Config)
		if err != nil {
			return nil, err
		}
		s.tls = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	}
	s.router.Use(securityHeaders, s.limitBody, s.metrics())
	s.router.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.router.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return s, nil
}

// Mount attaches a capability's handler under pattern (e.g. "/fhir").
// Request bodies are capped at 8 MiB.
func (s *Server) Mount(pattern string, h http.Handler) { s.router.Mount(pattern, h) }

// MountWithLimit attaches a handler whose requests may carry bodies of up
// to limit bytes (uploads of imaging media) instead of 8 MiB. Call it
// before Serve.
func (s *Server) MountWithLimit(pattern string, limit int64, h http.Handler) {
	if s.limits == nil {
		s.limits = map[string]int64{}
	}
	s.limits[strings.TrimSuffix(pattern, "/")] = limit
	s.router.Mount(pattern, h)
}

// Registry is where capabilities register their Prometheus metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Hospital is the installation the server serves.
func (s *Server) Hospital() *hospital.Hospital { return s.h }

// TLSConfig is the server's TLS configuration; capabilities that need
// client certificates (ingestion from gateways) adjust it before Serve.
func (s *Server) TLSConfig() *tls.Config { return s.tls }

// Handler is the whole routed handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.router }

// Serve accepts connections on ln until ctx ends, then shuts down
// gracefully (in-flight requests get 10 seconds).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.router,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, s.tls)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}
