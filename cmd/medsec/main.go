// Command medsec is a security platform for hospital information: it
// protects medical data along its whole life cycle, from a patient's device
// to its destruction, at the eleven places where it moves.
//
// Run `medsec --help` for the commands; `medsec demo` shows the whole life
// cycle of a small hospital in one process.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit code with an error already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitCode(newRoot().ExecuteContext(ctx))
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "medsec:", oneLine(err))
	return 1
}

// oneLine keeps an error to one line: people read it, scripts grep it.
func oneLine(err error) string {
	s := err.Error()
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "medsec",
		Short: "Security platform for hospital information, along the whole medical-data life cycle",
		Long: `medsec protects medical information from creation to destruction: sealed storage
with per-patient keys, a tamper-evident audit log, one door to patient data with
policy and consent, signed device data, malware-screened imaging, de-identified
AI datasets, sealed provision to other organizations, and crypto-shredding.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("data", defaultDataDir(), "data directory of the installation (or $MEDSEC_DATA)")
	root.PersistentFlags().String("db", "", "PostgreSQL connection string (postgres://…) instead of the embedded SQLite file")
	root.AddCommand(newInitCmd(), newDemoCmd(), newServeCmd(), newKeysCmd(), newAuditCmd(), newVersionCmd(), newPolicyCmd(), newAnomalyCmd(),
		newRecipientCmd(), newProvideCmd(), newPackageCmd(), newProvisionCmd(), newLifecycleCmd(), newPatientCmd(), newTraceCmd(),
		newDeviceCmd(), newGatewayCmd(), newBenchCmd(), newMetricsCmd())
	root.AddCommand(newScanCmd(), newImportCmd(), newQuarantineCmd(), newImagingCmd(), newDeidCmd(), newGuardCmd(), newDatasetCmd(), newRiskCmd())
	root.AddCommand(newCheckCmd(), newLoginCmd(), newLogoutCmd())
	return root
}

func defaultDataDir() string {
	if d := os.Getenv("MEDSEC_DATA"); d != "" {
		return d
	}
	return "medsec-data"
}
