// Package pipeline runs the whole PHD pipeline of one hospital in one
// process — the hospital server with ingestion, a security gateway, and
// simulated devices — talking real TLS 1.3 over loopback sockets. It is
// what `medsec demo` shows and `medsec bench ingest` measures, for the
// paper's locations 1–3.
package pipeline

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/server"
)

// Options configures a pipeline.
type Options struct {
	// Dir holds the gateway's queue and the devices' credentials.
	Dir string
	// Gateway adjusts the gateway's configuration (rate limits, bundle size).
	Gateway func(*gateway.Config)
	// Stored is called for every message the hospital stored.
	Stored func(h phd.Header)
	Logger *slog.Logger
}

// Pipeline is a running hospital server with ingestion and a gateway.
type Pipeline struct {
	Hospital   *hospital.Hospital
	Ingester   *ingest.Ingester
	Authority  *devices.Authority
	Gateway    *gateway.Gateway
	ServerURL  string
	GatewayURL string

	dir    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// Start serves h with ingestion on a loopback port, enrols a gateway
// named "gw-loopback" and runs it on another.
func Start(ctx context.Context, h *hospital.Hospital, opt Options) (*Pipeline, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	p := &Pipeline{Hospital: h, dir: opt.Dir, errs: make(chan error, 2)}
	srv, err := server.New(h, server.Options{Logger: opt.Logger})
	if err != nil {
		return nil, err
	}
	// Everything the pipeline starts stops at Close, whatever ctx does.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.Ingester, err = ingest.Attach(runCtx, srv, ingest.Parts{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door,
		Organization: h.Config.Hospital.Name, Logger: opt.Logger, Stored: opt.Stored})
	if err != nil {
		cancel()
		return nil, err
	}
	p.Authority = p.Ingester.Authority()
	p.ServerURL, err = p.serve(runCtx, func(c context.Context, ln net.Listener) error { return srv.Serve(c, ln) })
	if err != nil {
		p.Close()
		return nil, err
	}
	if err := p.startGateway(ctx, runCtx, srv, opt); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func (p *Pipeline) serve(ctx context.Context, run func(context.Context, net.Listener) error) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p.wg.Go(func() {
		if err := run(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
			p.errs <- err
		}
	})
	return "https://" + ln.Addr().String(), nil
}

func (p *Pipeline) startGateway(ctx, runCtx context.Context, srv *server.Server, opt Options) error {
	creds, err := p.enrollGateway(ctx, "gw-loopback")
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(srv.TLSConfig().Certificates[0].Certificate[0])
	if err != nil {
		return err
	}
	roots.AddCert(leaf)
	cfg := gateway.Config{Dir: filepath.Join(p.dir, "gateway"), Credentials: creds, Upstream: p.ServerURL, UpstreamRoots: roots,
		Logger: opt.Logger}
	if opt.Gateway != nil {
		opt.Gateway(&cfg)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return err
	}
	if p.Gateway, err = gateway.Open(ctx, cfg); err != nil {
		return err
	}
	p.GatewayURL, err = p.serve(runCtx, p.Gateway.Run)
	return err
}

// enrollGateway plays the gateway's enrollment in-process.
func (p *Pipeline) enrollGateway(ctx context.Context, name string) (*devices.Credentials, error) {
	tok, err := p.Authority.IssueToken(ctx, devices.TokenRequest{Kind: devices.KindGateway, Model: name, By: "system:pipeline"})
	if err != nil {
		return nil, err
	}
	key, err := device.GenerateKey(device.KeyP256)
	if err != nil {
		return nil, err
	}
	csr, err := devices.CreateGatewayCSR(key, name, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return nil, err
	}
	iss, err := p.Authority.Enroll(ctx, tok.Secret, csr)
	if err != nil {
		return nil, err
	}
	return &devices.Credentials{Key: key, Certificate: iss.Certificate, CA: p.Authority.CA()}, nil
}

// EnrollDevice enrols a simulated device of model for patientID
// in-process (token, key pair, request, certificate), saves it under the
// pipeline's directory and returns it ready to play.
func (p *Pipeline) EnrollDevice(ctx context.Context, patientID, serial, model string, kt device.KeyType) (gateway.FleetDevice, error) {
	return EnrollLocal(ctx, p.Authority, p.Ingester.PublicKey(), patientID, serial, model, kt,
		filepath.Join(p.dir, "devices", serial), "system:pipeline")
}

// Close stops the gateway and the server.
func (p *Pipeline) Close() error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	close(p.errs)
	var err error
	for e := range p.errs {
		err = errors.Join(err, e)
	}
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}
