package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/guard/agent"
	"github.com/medsec/medsec/internal/guard/workstation"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/server"
)

func newGuardCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "guard", Short: "Protect legacy PACS workstations: the agent, and their enrolment with the hospital server"}
	cmd.AddCommand(newGuardAgentCmd(), newGuardEnrollCmd(), newGuardRevokeCmd(), newGuardListCmd())
	return cmd
}

func newGuardAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the workstation agent: executable allowlist by SHA-256, file-integrity monitoring, alerts to stdout and the hospital server",
		Long: `agent runs on a legacy PACS viewer or modality PC. It lets only allowlisted
executables run (mode: enforce stops the others), watches protected
directories for changed content, owner and permissions, and writes every
alert as a JSON line to stdout; with a 'server:' section (url, cert, key, ca:
the files 'medsec guard enroll' wrote) it also reports to the hospital server
over mutual TLS, keeping alerts while the server is unreachable.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" {
					return cmd.Help()
				}
			}
			if code := agent.Main(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
}

// openRegistry opens the workstation registry of an installation.
func openRegistry(ctx context.Context, h *hospital.Hospital) (*workstation.Registry, error) {
	return workstation.Open(ctx, workstation.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Alerts: h.Alerts})
}

// mountGuard serves the workstation alert endpoint at /guard/alerts when
// malicious-code prevention is on.
func mountGuard(ctx context.Context, srv *server.Server, h *hospital.Hospital) error {
	if !h.Config.Capabilities.MalwarePrevent {
		return nil
	}
	reg, err := openRegistry(ctx, h)
	if err != nil {
		return err
	}
	reg.ConfigureTLS(srv.TLSConfig())
	srv.Mount("/guard", reg.Handler())
	return nil
}

func newGuardEnrollCmd() *cobra.Command {
	var out, url string
	var days int
	cmd := &cobra.Command{
		Use:   "enroll NAME [--out DIR]",
		Short: "Issue a workstation its client certificate and write what its agent needs (audited)",
		Long: `enroll issues the workstation NAME a client certificate from the hospital's
own workstation CA and writes to DIR (default ./NAME, created 0700): NAME.crt,
NAME.key (its private key: copy it to the workstation and delete it here),
server.crt (to trust this server) and agent.yaml (a starting configuration).
Enrolling a name again replaces its certificate; the old one stops working.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			reg, err := openRegistry(cmd.Context(), h)
			if err != nil {
				return err
			}
			name := args[0]
			if out == "" {
				out = name
			}
			if err := os.Mkdir(out, 0o700); err != nil {
				return err
			}
			e, err := reg.Enroll(cmd.Context(), name, cliActor(), time.Duration(days)*24*time.Hour)
			if err != nil {
				os.Remove(out)
				return err
			}
			if url == "" {
				url = defaultAlertURL(h)
			}
			if err := writeEnrollment(h, out, e, url); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled %s: certificate %s valid until %s\nwrote %s (copy it to the workstation; keep %s.key secret)\n",
				name, e.Serial, e.Expires.Format(time.DateOnly), out, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the certificate, key and agent configuration into (must not exist)")
	cmd.Flags().IntVar(&days, "days", 365, "days the certificate is valid")
	cmd.Flags().StringVar(&url, "url", "", "the server's alert URL the agent should use (default from server.listen)")
	return cmd
}

func defaultAlertURL(h *hospital.Hospital) string {
	host, port, err := net.SplitHostPort(h.Config.Server.Listen)
	if err != nil {
		return "https://SERVER:8443/guard/alerts"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "SERVER"
	}
	return "https://" + net.JoinHostPort(host, port) + "/guard/alerts"
}

func writeEnrollment(h *hospital.Hospital, dir string, e workstation.Enrollment, url string) error {
	cert, err := server.LoadOrCreateCertificate(h.Config)
	if err != nil {
		return err
	}
	var serverPEM []byte
	for _, der := range cert.Certificate {
		serverPEM = append(serverPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	conf := fmt.Sprintf(`# medsec guard agent for workstation %s. Paths are relative to where the
# agent runs; fill in the allowlist and the protected directories.
mode: alert
allow_paths: []
protect: []
server:
  url: %s
  cert: %s.crt
  key: %s.key
  ca: server.crt
`, e.Name, url, e.Name, e.Name)
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{e.Name + ".crt", e.CertPEM, 0o644}, {e.Name + ".key", e.KeyPEM, 0o600}, {"server.crt", serverPEM, 0o644}, {"agent.yaml", []byte(conf), 0o644}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func newGuardRevokeCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME --reason TEXT",
		Short: "Stop accepting a workstation's certificate (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			reg, err := openRegistry(cmd.Context(), h)
			if err != nil {
				return err
			}
			if err := reg.Revoke(cmd.Context(), args[0], cliActor(), reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (written into the audit log)")
	cmd.MarkFlagRequired("reason")
	return cmd
}

func newGuardListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List enrolled workstations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			reg, err := openRegistry(cmd.Context(), h)
			if err != nil {
				return err
			}
			ws, err := reg.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tEXPIRES\tLAST SEEN")
			for _, w := range ws {
				state, seen := "active", "never"
				if !w.Revoked.IsZero() {
					state = "revoked " + w.Revoked.Format(time.DateOnly)
				}
				if !w.LastSeen.IsZero() {
					seen = w.LastSeen.Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.Name, state, w.Expires.Format(time.DateOnly), seen)
			}
			return tw.Flush()
		},
	}
}
