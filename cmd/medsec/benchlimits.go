package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/benchref"
)

func newBenchLimitsCmd() *cobra.Command {
	var asJSON bool
	var each time.Duration
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Measure this machine's raw limits (SHA-256, AES-256-GCM, Ed25519 and ECDSA P-256 verification) on one core",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := benchref.Measure(each)
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(l)
			}
			fmt.Fprintf(out, "SHA-256                 %8.0f MB/s\n", l.SHA256MBps)
			fmt.Fprintf(out, "AES-256-GCM seal 256 B  %8.0f /s\n", l.AESGCM256Bps)
			fmt.Fprintf(out, "Ed25519 verify          %8.0f /s\n", l.Ed25519VerifyPerS)
			fmt.Fprintf(out, "ECDSA P-256 verify      %8.0f /s\n", l.ECDSAP256VerifyPerS)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the figures as JSON")
	cmd.Flags().DurationVar(&each, "each", time.Second, "how long to run each measurement")
	return cmd
}
