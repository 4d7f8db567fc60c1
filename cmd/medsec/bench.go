package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/gateway/pipeline"
)

// newBenchCmd groups the benchmarks that measure medsec end to end on this
// machine; each prints its figures beside the machine's raw limits.
func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure medsec end to end on this machine, beside its raw cryptographic limits"}
	cmd.AddCommand(newBenchIngestCmd(), newBenchAPICmd(), newBenchLimitsCmd())
	return cmd
}

func newBenchIngestCmd() *cobra.Command {
	var asJSON bool
	var devicesN int
	var phase time.Duration
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Devices → gateway → server → SQLite over real TLS on loopback: measurements/s and latency for batches of 1 and 32",
		Long: `ingest builds a throwaway installation, enrols a fleet of simulated devices and a gateway,
and runs three load phases over real TLS on loopback: batches of 1 measurement as fast as
the pipeline takes them, batches of 1 at half that rate (send-to-stored latency), and
batches of 32 as fast as possible. It reads every stored reading back through the door
(nothing lost, nothing twice) and reports the figures beside the machine's ECDSA P-256
verification rate measured in the same run (every message is verified twice, by the
gateway and by the server).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			opt := pipeline.BenchOptions{Devices: devicesN, Phase: phase}
			if !asJSON {
				opt.Log = func(f string, a ...any) { fmt.Fprintf(out, "• "+f+"\n", a...) }
			}
			rep, err := pipeline.Bench(cmd.Context(), opt)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			fmt.Fprintf(out, "\nmedsec bench ingest: %d measurements sent, %d stored, %d duplicates, %d lost (%.0f s)\n",
				rep.Measurements, rep.Stored, rep.Duplicates, rep.Lost, rep.Seconds)
			fmt.Fprintf(out, "  batch 1:  %8.0f measurements/s = %.2f × the ceiling of %.0f (verify/s ÷ 2); p50 %.1f ms, p99 %.1f ms at %.0f messages/s\n",
				rep.PerSecondBatch1, rep.RatioBatch1, rep.CeilingBatch1, rep.P50MSBatch1, rep.P99MSBatch1, rep.LatencyRateBatch1)
			fmt.Fprintf(out, "  batch 32: %8.0f measurements/s; p50 %.1f ms, p99 %.1f ms at full speed\n", rep.PerSecondBatch32, rep.P50MSBatch32, rep.P99MSBatch32)
			fmt.Fprintf(out, "  ceiling:  %8.0f ECDSA P-256 verifications/s on %d cores (%.0f on one)\n", rep.VerifyPerSecond, rep.Cores, rep.VerifyPerSecondCore)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&devicesN, "devices", 64, "simulated devices")
	cmd.Flags().DurationVar(&phase, "phase", 8*time.Second, "length of each load phase")
	return cmd
}
