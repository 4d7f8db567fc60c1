package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/fhirapi"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/server"
)

func newServeCmd() *cobra.Command {
	var listen string
	var anomalyEvery time.Duration
	var retentionEvery time.Duration
	var importMax int64
	var sf scanFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hospital server: records API, device-data ingestion, console and patient portal over HTTPS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scan, err := sf.config(cmd)
			if err != nil {
				return err
			}
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			srv, err := server.New(h, server.Options{Logger: logger})
			if err != nil {
				return err
			}
			if err := mountIngestion(cmd.Context(), srv, h, logger); err != nil {
				return err
			}
			srv.Mount("/fhir", fhirapi.New(h, fhirapi.Options{Logger: logger, Documents: h.Documents}))
			if err := mountGuard(cmd.Context(), srv, h); err != nil {
				return err
			}
			if err := mountImaging(cmd.Context(), srv, h, scan, importMax, logger); err != nil {
				return err
			}
			if _, err := mountConsole(cmd.Context(), srv, h, logger); err != nil {
				return err
			}
			if listen == "" {
				listen = h.Config.Server.Listen
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			if err := startRetention(cmd.Context(), h, retentionEvery, logger); err != nil {
				return err
			}
			if anomalyEvery > 0 {
				go h.Anomalies().Run(cmd.Context(), anomalyEvery)
			}
			serverGC()
			logger.Info("medsec serving", "address", "https://"+ln.Addr().String(), "hospital", h.Config.Hospital.Name)
			return srv.Serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (default: server.listen of the configuration)")
	cmd.Flags().DurationVar(&anomalyEvery, "anomaly-every", 5*time.Minute, "scan the audit log for access anomalies this often (0: never; `medsec anomaly scan` runs one on demand)")
	cmd.Flags().DurationVar(&retentionEvery, "retention-every", 24*time.Hour, "run retention and the overdue check this often (0: never)")
	cmd.Flags().Int64Var(&importMax, "import-max-bytes", imaging.DefaultMaxUploadBytes, "largest upload POST /imaging/import takes, in bytes (default a CD); held in memory while it is imported")
	sf.add(cmd) // scanner options of the imaging import API
	return cmd
}

// serveGCPercent is the garbage collector's target for medsec serve when
// GOGC is not set. The server's live heap is small (about 8 MB under load:
// SQLite keeps its pages outside the Go heap), so Go's default of 100 made
// it collect some 18 times a second under load, about 7% of its CPU. At
// 400 the heap may grow to about five times the live data before a
// collection, a few tens of MB more. GOGC and GOMEMLIMIT in the
// environment still take precedence.
const serveGCPercent = 400

func serverGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serveGCPercent)
	}
}
