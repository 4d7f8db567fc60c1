package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// securityHeaders sets the headers every medsec response carries: no
// framing, no sniffing, no referrer, HSTS, and a CSP without inline script.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// defaultBodyLimit caps the body of every request but those to a mount
// given its own limit (MountWithLimit).
const defaultBodyLimit = 8 << 20

// limitBody caps request bodies at the limit of the mount the path is
// routed to; a handler reading past the cap gets an error and answers 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.bodyLimit(r)
		if r.ContentLength > n {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// bodyLimit is the limit of the mount whose pattern prefixes the path the
// router routes on (the escaped path when there is one, as chi does).
func (s *Server) bodyLimit(r *http.Request) int64 {
	p := r.URL.RawPath
	if p == "" {
		p = r.URL.Path
	}
	for pattern, n := range s.limits {
		if p == pattern || strings.HasPrefix(p, pattern+"/") {
			return n
		}
	}
	return defaultBodyLimit
}

// metrics counts requests and their latency by route pattern and status
// (never by path: paths hold ids).
func (s *Server) metrics() func(http.Handler) http.Handler {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medsec_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "status"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "medsec_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"})
	s.registry.MustRegister(reqs, lat)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched"
			}
			reqs.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			lat.WithLabelValues(route).Observe(time.Since(start).Seconds())
		})
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
