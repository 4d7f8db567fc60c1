package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/posture"
)

func newCheckCmd() *cobra.Command {
	var asJSON, verify bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the security posture: every requirement of the hospital's profile, its control and its real state (exit 1 when a required control fails)",
		Long: `check traces each security requirement of the paper's Table 4 (location ×
requirement) for the configured profile to the medsec control that meets it and
checks that control's real state: the key file's mode, the server certificate,
when the audit log last verified, whether a privileged account lacks a second
factor, the access policy's test decisions, open alerts. It maps the result to
the HIPAA technical safeguards (§164.312 a-e) and the ISO 27799 control areas.
--verify first verifies the whole audit log and records the result.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			if verify {
				v, err := posture.Verify(cmd.Context(), h, cliActor())
				if err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintln(cmd.OutOrStdout(), v.Summary)
				}
			}
			r, err := posture.Check(cmd.Context(), h, posture.Options{})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				err = enc.Encode(r)
			} else {
				err = r.WriteText(cmd.OutOrStdout())
			}
			if err == nil && !r.OK() {
				return exitError{code: 1}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&verify, "verify", false, "verify the audit log first and record the result")
	return cmd
}
