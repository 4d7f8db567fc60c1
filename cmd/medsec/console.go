package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/console/sections"
	"github.com/medsec/medsec/internal/console/showcase"
	"github.com/medsec/medsec/internal/demo"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/server"
)

// verifyEvery is how often medsec serve verifies the whole audit log (the
// posture check wants a verification within 24 hours).
const verifyEvery = 6 * time.Hour

// mountConsole serves the security console, the patient portal and the
// waiting-room displays at the server's root, puts the server's metrics
// behind a staff sign-in, connects the console to erasures (what it keeps
// of a patient goes with the patient), prunes its tables now and after
// every midnight, and verifies the audit log now and every verifyEvery
// until ctx ends.
func mountConsole(ctx context.Context, srv *server.Server, h *hospital.Hospital, logger *slog.Logger) (*console.Console, error) {
	l, err := assembleLife(ctx, h, nil, "serve")
	if err != nil {
		return nil, err
	}
	ds, err := datasetService(ctx, h, nil, "serve")
	if err != nil {
		return nil, err
	}
	con, err := console.New(ctx, h, console.Options{Logger: logger, Sections: sections.New(h, l.engine, l.prov, ds)})
	if err != nil {
		return nil, err
	}
	l.engine.AddSource(con.Traces())
	srv.Mount("/", con)
	// Replaces the server's open GET /metrics: chi lets a mount on the
	// same path take over every method (TestServeMetricsNeedSignIn).
	srv.Mount("/metrics", con.GuardMetrics(promhttp.HandlerFor(srv.Registry(), promhttp.HandlerOpts{})))
	go con.PruneEvery(ctx, logger)
	go console.VerifyEvery(ctx, h, verifyEvery, logger)
	return con, nil
}

// serveDemo leaves the demo hospital running (medsec demo --serve): it
// opens the kept data directory, prepares the tour (tickets, an alert to
// review, a portal account), serves the console and prints where to look
// and how to sign in, with a fresh one-time code for the security officer
// every 30 seconds. Ctrl-C stops it; a temporary directory is removed.
func serveDemo(cmd *cobra.Command, rep *demo.Report, passphrase []byte, started time.Time, temporary bool) error {
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	if temporary {
		defer os.RemoveAll(rep.Dir)
	}
	h, err := hospital.Open(ctx, rep.Dir, hospital.OpenOptions{Passphrase: passphrase})
	if err != nil {
		return err
	}
	defer h.Close(context.Background())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(h, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	con, err := mountConsole(ctx, srv, h, logger)
	if err != nil {
		return err
	}
	tour, err := showcase.Prepare(ctx, h, con, demoAccounts(rep), demoPatients(rep))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8443")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // 8443 is taken: any free port
	}
	if err != nil {
		return err
	}
	check := "MEDSEC_PASSPHRASE=… medsec check --data " + rep.Dir
	if temporary { // a throw-away hospital of synthetic patients
		check = fmt.Sprintf("MEDSEC_PASSPHRASE=%s medsec check --data %s", passphrase, rep.Dir)
	}
	printTour(out, "https://"+ln.Addr().String(), rep, tour, check, temporary)
	go officerCodes(ctx, out, rep, started)
	return srv.Serve(ctx, ln)
}

func demoAccounts(rep *demo.Report) []showcase.Account {
	out := make([]showcase.Account, len(rep.Staff))
	for i, s := range rep.Staff {
		out[i] = showcase.Account{Username: s.Username, Role: s.Role, Password: s.Password}
	}
	return out
}

func demoPatients(rep *demo.Report) []string {
	out := make([]string, len(rep.Patients))
	for i, p := range rep.Patients {
		out[i] = p.ID
	}
	return out
}

func printTour(w io.Writer, base string, rep *demo.Report, t showcase.Tour, check string, temporary bool) {
	fmt.Fprintf(w, "\nThe demo hospital is running at %s/ (self-signed certificate: accept it once in the browser)\n\n", base)
	fmt.Fprintf(w, "  security console   %s/console/\n", base)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range rep.Staff {
		extra := ""
		if s.TOTPSecret != "" {
			extra = "one-time code printed below (or TOTP secret " + s.TOTPSecret + " in an authenticator app)"
		}
		fmt.Fprintf(tw, "    %s\t%s\tpassword %s\t%s\n", s.Username, s.Role, s.Password, extra)
	}
	tw.Flush()
	fmt.Fprintf(w, "  patient portal     %s/portal/   user %s, password %s (patient %s)\n", base, t.PortalUser, t.PortalPassword, t.Patient)
	fmt.Fprintf(w, "  waiting room       %s%s   (an enrolled screen: open it once)\n", base, t.DisplayPath)
	fmt.Fprintf(w, "  posture check      %s\n", check)
	if temporary {
		fmt.Fprintln(w, "\nCtrl-C stops the hospital and removes its temporary data directory.")
	} else {
		fmt.Fprintln(w, "\nCtrl-C stops the hospital; its data directory stays.")
	}
}

// officerCodes prints the privileged demo accounts' current one-time codes
// at every 30-second step, beginning with a step the demo run itself did
// not use (each code signs in once).
func officerCodes(ctx context.Context, w io.Writer, rep *demo.Report, started time.Time) {
	first := started.Unix()/30 + 2
	for {
		now := time.Now()
		if now.Unix()/30 >= first {
			for _, s := range rep.Staff {
				if s.TOTPSecret == "" {
					continue
				}
				if code, err := totp.GenerateCode(s.TOTPSecret, now); err == nil {
					fmt.Fprintf(w, "  %s  one-time code for %s: %s (valid until %s)\n", now.Format("15:04:05"), s.Username, code,
						time.Unix((now.Unix()/30+1)*30, 0).Format("15:04:05"))
				}
			}
		}
		next := time.Unix((now.Unix()/30+1)*30, 0)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}
