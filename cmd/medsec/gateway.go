package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/server"
)

// Files of a gateway's data directory.
const (
	gatewayCredentials = "credentials"     // key.pem, cert.pem, ca.pem
	gatewayUpstreamCA  = "upstream-ca.pem" // the hospital server's TLS certificate or CA
)

func newGatewayCmd() *cobra.Command {
	var listen, upstream, metrics string
	var rate float64
	var burst int
	cmd := &cobra.Command{
		Use:   "gateway --data DIR --listen ADDR --upstream URL",
		Short: "Run the security gateway: devices in over mutual TLS, a durable queue, exactly-once delivery to the hospital",
		Long: `gateway runs the medical information security gateway. Devices connect over TLS 1.3
with the certificate the hospital issued; each message's certificate, status, binding,
signature, sequence number, size and rate are checked, the message is written to a
durable queue in DIR and only then acknowledged. The queue is forwarded to the hospital
(--upstream, medsec serve) over mutual TLS with retries and backoff. The gateway cannot
read the readings: they are encrypted to the hospital.

DIR is made by medsec gateway enroll --out (on the hospital's machine) or medsec gateway
activate (on the gateway's).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _ := cmd.Flags().GetString("data")
			return runGateway(cmd.Context(), dir, listen, upstream, metrics, rate, burst)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8444", "address devices connect to")
	cmd.Flags().StringVar(&upstream, "upstream", "", "the hospital server, https://host:port")
	cmd.Flags().StringVar(&metrics, "metrics", "", "serve Prometheus metrics over plain HTTP on this address (e.g. 127.0.0.1:9464)")
	cmd.Flags().Float64Var(&rate, "device-rate", 5, "messages per second each device may send (negative: no limit)")
	cmd.Flags().IntVar(&burst, "device-burst", 20, "burst of messages a device may send at once")
	cmd.MarkFlagRequired("upstream")
	cmd.AddCommand(newGatewayEnrollCmd(), newGatewayActivateCmd())
	return cmd
}

func runGateway(ctx context.Context, dir, listen, upstream, metricsAddr string, rate float64, burst int) error {
	creds, err := devices.LoadCredentials(filepath.Join(dir, gatewayCredentials))
	if err != nil {
		return fmt.Errorf("gateway credentials (run medsec gateway activate first): %w", err)
	}
	ca, err := devices.ReadCertificate(filepath.Join(dir, gatewayUpstreamCA))
	if err != nil {
		return fmt.Errorf("the hospital's certificate %s: %w", gatewayUpstreamCA, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	g, err := gateway.Open(ctx, gateway.Config{Dir: dir, Credentials: creds, CredentialsDir: filepath.Join(dir, gatewayCredentials),
		Upstream: upstream, UpstreamRoots: newPool(ca), DeviceRate: rate, DeviceBurst: burst, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	if metricsAddr != "" {
		go serveMetrics(ctx, metricsAddr, g.MetricsHandler(), logger)
	}
	logger.Info("medsec gateway", "name", g.Name(), "address", "https://"+ln.Addr().String(), "upstream", upstream, "queued", g.Queued())
	err = g.Run(ctx, ln)
	if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func serveMetrics(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("metrics listener", "err", err)
	}
}

func newPool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func newGatewayEnrollCmd() *cobra.Command {
	var name, out string
	var hosts []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "enroll --name NAME",
		Short: "Issue a one-time enrollment token for a gateway (on the hospital's machine; --data is the installation)",
		Long: `enroll issues a one-time, expiring token for a gateway named NAME; the gateway trades it
for its certificate with medsec gateway activate.

With --out DIR, enroll also prepares the gateway's directory on this machine: key pair,
certificate (for --host names and addresses) and the hospital server's certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, a, err := openAuthority(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			tok, err := a.IssueToken(cmd.Context(), devices.TokenRequest{Kind: devices.KindGateway, Model: name, TTL: ttl, By: cliActor()})
			if err != nil {
				return err
			}
			if out == "" {
				fmt.Fprintln(cmd.OutOrStdout(), tok.Secret)
				fmt.Fprintf(cmd.ErrOrStderr(), "one-time token for gateway %s, valid until %s\n", name, tok.Expires.Format(time.RFC3339))
				return nil
			}
			return prepareGateway(cmd, h, a, tok.Secret, name, hosts, out)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the gateway's name")
	cmd.Flags().DurationVar(&ttl, "ttl", devices.DefaultTokenTTL, "how long the token stays valid")
	cmd.Flags().StringVar(&out, "out", "", "prepare the gateway's data directory here")
	cmd.Flags().StringSliceVar(&hosts, "host", []string{"127.0.0.1", "localhost"}, "names and addresses devices reach the gateway by (with --out)")
	cmd.MarkFlagRequired("name")
	return cmd
}

// prepareGateway plays the gateway's enrollment locally and writes its
// directory.
func prepareGateway(cmd *cobra.Command, h *hospital.Hospital, a *devices.Authority, token, name string, hosts []string, out string) error {
	key, err := device.GenerateKey(device.KeyP256)
	if err != nil {
		return err
	}
	csr, err := devices.CreateGatewayCSR(key, name, hosts)
	if err != nil {
		return err
	}
	iss, err := a.Enroll(cmd.Context(), token, csr)
	if err != nil {
		return err
	}
	creds := &devices.Credentials{Key: key, Certificate: iss.Certificate, CA: a.CA()}
	if err := creds.Save(filepath.Join(out, gatewayCredentials)); err != nil {
		return err
	}
	tlsCert, err := server.LoadOrCreateCertificate(h.Config)
	if err != nil {
		return err
	}
	serverPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsCert.Certificate[0]})
	if err := keys.WriteFileAtomic(filepath.Join(out, gatewayUpstreamCA), serverPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "gateway %s enrolled; its directory is %s (certificate valid until %s)\n", name, out, iss.Certificate.NotAfter.Format(time.RFC3339))
	return nil
}

func newGatewayActivateCmd() *cobra.Command {
	var server, serverCA, token, name string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "activate --data DIR --token TOKEN --name NAME --server URL --server-ca FILE",
		Short: "On the gateway: make a key pair and trade the enrollment token for the gateway's certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _ := cmd.Flags().GetString("data")
			c, err := serverClient(server, serverCA, nil)
			if err != nil {
				return err
			}
			creds, err := c.EnrollGateway(cmd.Context(), token, name, hosts)
			if err != nil {
				return err
			}
			if err := creds.Save(filepath.Join(dir, gatewayCredentials)); err != nil {
				return err
			}
			ca, err := os.ReadFile(serverCA)
			if err != nil {
				return err
			}
			if err := keys.WriteFileAtomic(filepath.Join(dir, gatewayUpstreamCA), ca, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gateway %s activated in %s (certificate valid until %s)\n", name, dir, creds.Certificate.NotAfter.Format(time.RFC3339))
			return nil
		},
	}
	deviceServerFlags(cmd, &server, &serverCA)
	cmd.Flags().StringVar(&token, "token", "", "the enrollment token")
	cmd.Flags().StringVar(&name, "name", "", "the gateway's name (as the token was issued for)")
	cmd.Flags().StringSliceVar(&hosts, "host", []string{"127.0.0.1", "localhost"}, "names and addresses devices reach the gateway by")
	cmd.MarkFlagRequired("token")
	cmd.MarkFlagRequired("name")
	return cmd
}

// mountIngestion adds device enrollment and ingestion to `medsec serve`
// when the installation runs the PHD security technologies.
func mountIngestion(ctx context.Context, srv *server.Server, h *hospital.Hospital, logger *slog.Logger) error {
	c := h.Config.Capabilities
	if !c.PHDSecurity && !c.SecurityGateway && !c.PHDAuth {
		return nil
	}
	_, err := ingest.Attach(ctx, srv, ingest.Parts{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door,
		Organization: h.Config.Hospital.Name, Logger: logger})
	return err
}
