package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, prove and export the tamper-evident audit log"}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditProofCmd(), newAuditCheckProofCmd(), newAuditExportCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var asJSON, index bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit tree and check it against the signed checkpoints (exit 1 names the first bad event)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			vf := h.Verifier()
			vf.Index = index
			v, err := vf.Verify(cmd.Context())
			if err != nil && !errors.Is(err, audit.ErrTampered) {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				json.NewEncoder(out).Encode(v)
			} else {
				fmt.Fprintln(out, v.Summary())
			}
			if !v.OK {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&index, "index", false, "also check the index by patient against the events (finds a read hidden from a patient's access history; a second pass over the log)")
	return cmd
}

func newAuditProofCmd() *cobra.Command {
	var index uint64
	cmd := &cobra.Command{
		Use:   "proof",
		Short: "Print an inclusion proof of one event that a third party can check with the verifier key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			if _, err := h.Audit.Checkpoint(cmd.Context()); err != nil {
				return err
			}
			p, err := h.Verifier().Prove(cmd.Context(), index)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
	cmd.Flags().Uint64Var(&index, "index", 0, "index of the event to prove")
	cmd.MarkFlagRequired("index")
	return cmd
}

func newAuditCheckProofCmd() *cobra.Command {
	var vkeyFile string
	cmd := &cobra.Command{
		Use:   "check-proof PROOF.json",
		Short: "Check an inclusion proof with only the public verifier key (for auditors; needs no data directory)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vkey, err := os.ReadFile(vkeyFile)
			if err != nil {
				return fmt.Errorf("read verifier key: %w", err)
			}
			v, err := note.NewVerifier(string(bytes.TrimSpace(vkey)))
			if err != nil {
				return fmt.Errorf("verifier key %s: %w", vkeyFile, err)
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var p audit.InclusionProof
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("%s is not an inclusion proof: %w", args[0], err)
			}
			if err := audit.CheckProof(p, v); err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "PROOF FAILS: %v\n", err)
				return exitError{code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "proof holds: event %d (%s by %s) is in the signed log of %d events\n",
				p.Index, p.Event.Action, p.Event.Actor, p.Size)
			return nil
		},
	}
	cmd.Flags().StringVar(&vkeyFile, "vkey", "", "the log's verifier key file (keys/audit.vkey of the installation)")
	cmd.MarkFlagRequired("vkey")
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var format, outFile string
	var unverified bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the audit log as FHIR R4 AuditEvent NDJSON or RFC 5424 syslog lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != audit.FormatFHIR && format != audit.FormatSyslog {
				return fmt.Errorf("unknown format %q: use fhir or syslog", format)
			}
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			// An export is evidence: it leaves only a log that verifies.
			if !unverified {
				if v, err := h.Verifier().Verify(cmd.Context()); err != nil || !v.OK {
					return fmt.Errorf("export refused: %s; run medsec audit verify, or pass --unverified to export the log as it is", verifySummary(v, err))
				}
			}
			var w io.Writer = cmd.OutOrStdout()
			if outFile != "" {
				f, err := os.OpenFile(outFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			n, err := audit.Export(cmd.Context(), h.DB, h.Config.Audit.Chain, format, w)
			if err != nil {
				return err
			}
			if outFile != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "exported %d events to %s\n", n, outFile)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "fhir", "fhir (AuditEvent NDJSON) or syslog (RFC 5424)")
	cmd.Flags().StringVar(&outFile, "out", "", "write to this new file instead of standard output")
	cmd.Flags().BoolVar(&unverified, "unverified", false, "export even when the log does not verify (for an investigation of the tampering)")
	return cmd
}

// verifySummary says why a verification did not pass.
func verifySummary(v audit.Verification, err error) string {
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return err.Error()
	}
	return v.Summary()
}
