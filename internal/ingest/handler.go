package ingest

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// PathMessages is where gateways post bundles, relative to the mount
// point (medsec serve mounts ingestion at /ingest).
const PathMessages = "/v1/messages"

// Answer is the JSON answer to a bundle: one Result per message, in order.
type Answer struct {
	Gateway string   `json:"gateway"`
	Results []Result `json:"results"`
}

// Handler serves the ingestion API. Every request must come from an
// enrolled, active gateway presenting its certificate over TLS; anything
// else is refused with a reason, counted and audited.
func (in *Ingester) Handler() http.Handler {
	r := chi.NewRouter()
	r.Post(PathMessages, in.serveBundle)
	r.Post(PathRefusals, in.serveRefusals)
	return r
}

func (in *Ingester) serveBundle(w http.ResponseWriter, r *http.Request) {
	gw, err := in.cfg.Authority.ActiveGateway(r.Context(), in.verifier, r)
	if err != nil {
		in.refuseGateway(r.Context(), w, r, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBundleBytes+1))
	if err != nil {
		in.answerRefusal(w, &phd.Error{Reason: phd.ReasonTooLarge, Detail: "the bundle could not be read whole"})
		return
	}
	msgs, err := DecodeBundle(body)
	if err != nil {
		in.answerRefusal(w, err)
		return
	}
	devices.WriteJSON(w, http.StatusOK, Answer{Gateway: gw.Serial, Results: in.Process(r.Context(), gw.Serial, msgs)})
}

// refuseGateway answers a caller that is not an active gateway, counts it
// and audits it.
func (in *Ingester) refuseGateway(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	reason := phd.ReasonOf(err)
	in.metrics.gateways.WithLabelValues(string(reason)).Inc()
	if reason != phd.ReasonInternal {
		ev := audit.Event{Time: in.now(), Actor: "anonymous", Action: "phd.gateway.refuse", Outcome: audit.Denied,
			Source: r.RemoteAddr, Reason: string(reason) + ": " + detailOf(err)}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			ev.Actor = "certificate:" + r.TLS.PeerCertificates[0].Subject.CommonName
		}
		if _, aerr := in.cfg.Audit.Append(ctx, ev); aerr != nil {
			in.cfg.Logger.Error("audit a refused gateway", "err", aerr)
		}
	}
	in.answerRefusal(w, err)
}

func (in *Ingester) answerRefusal(w http.ResponseWriter, err error) {
	status, ref := devices.RefusalOf(err)
	if status >= 500 {
		in.cfg.Logger.Error("ingestion", "err", err)
	}
	devices.WriteJSON(w, status, ref)
}

// Server is what Attach needs of `medsec serve` (server.Server): a
// router to mount on, the metrics registry and the TLS configuration.
type Server interface {
	Mount(pattern string, h http.Handler)
	Registry() *prometheus.Registry
	TLSConfig() *tls.Config
}

// Parts are the pieces of an open installation ingestion runs on.
type Parts struct {
	DB    *store.DB
	Keys  *keys.Keyring
	Audit *audit.Log
	Door  *records.Door
	// Alerts receives alerts on devices that keep failing checks at a
	// gateway (default: an inbox on DB and Audit).
	Alerts       *alerts.Inbox
	Organization string
	Logger       *slog.Logger
	// Stored is passed to Config.Stored.
	Stored func(h phd.Header)
}

// Attach adds device enrollment (/devices) and ingestion (/ingest: bundles
// and gateways' refusal records) to a
// server: it opens the device authority, asks TLS clients for certificates
// (verified per request, so a refusal gets a reason code instead of a
// failed handshake), settles claims a previous run left, keeps the ledger
// maintained until ctx ends, and mounts both APIs.
func Attach(ctx context.Context, srv Server, p Parts) (*Ingester, error) {
	a, err := devices.Open(ctx, devices.Config{DB: p.DB, Keys: p.Keys, Audit: p.Audit, Door: p.Door, Organization: p.Organization})
	if err != nil {
		return nil, err
	}
	if p.Alerts == nil {
		p.Alerts = alerts.New(p.DB, p.Audit)
	}
	in, err := New(ctx, Config{DB: p.DB, Keys: p.Keys, Audit: p.Audit, Door: p.Door, Authority: a, Alerts: p.Alerts, Logger: p.Logger,
		Registerer: srv.Registry(), Stored: p.Stored})
	if err != nil {
		return nil, err
	}
	// A single SQLite server owns every claim it finds at start-up; on
	// PostgreSQL other replicas may be mid-delivery, so leases decide.
	if _, err := in.Recover(ctx, p.DB.Dialect() == store.SQLite); err != nil {
		return nil, err
	}
	go in.Maintain(ctx, 10*time.Minute)
	api, err := a.Handler(in.PublicKey(), in.cfg.Logger)
	if err != nil {
		return nil, err
	}
	if cfg := srv.TLSConfig(); cfg.ClientAuth < tls.RequestClientCert {
		cfg.ClientAuth = tls.RequestClientCert
	}
	srv.Mount("/devices", api)
	srv.Mount("/ingest", in.Handler())
	return in, nil
}
