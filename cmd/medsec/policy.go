package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/keys"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Ask the access policy what it decides and why"}
	cmd.AddCommand(newPolicyExplainCmd())
	return cmd
}

func newPolicyExplainCmd() *cobra.Command {
	var x hospital.ExplainRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain --user U --patient P --action A --purpose X",
		Short: "Print the decision on a request and the policies that decided it (reads no patient data; the question is audited)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			if x.PatientID, err = h.ResolvePatient(cmd.Context(), x.PatientID); err != nil {
				return err
			}
			x.Asker = cliActor()
			d, err := h.Explain(cmd.Context(), x)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(d)
			}
			fmt.Fprintf(out, "request: %s %s %s of patient %s for %s\n", x.Username, x.Action, x.Class, x.PatientID, x.Purpose)
			fmt.Fprint(out, d.Explain())
			// The decision is the policy's; a destroyed patient's data is
			// gone whatever it says.
			if _, kerr := h.Keys.ForPatient(cmd.Context(), h.DB, x.PatientID); errors.Is(kerr, keys.ErrDestroyed) {
				fmt.Fprintf(out, "note: %v — every read fails whatever the policy decides\n", kerr)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&x.Username, "user", "", "staff user name")
	f.StringVar(&x.PatientID, "patient", "", "patient id, FHIR id (pt-…) or pseudonym (P-…)")
	f.StringVar(&x.Action, "action", "read", "read, search, write, export, break_glass or destroy")
	f.StringVar(&x.Class, "class", "observation", "data class: demographics, observation, encounter, order, medication, note, imaging, billing, consent, audit")
	f.StringVar(&x.Purpose, "purpose", "TREAT", "HL7 purpose of use: TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH, MLTRAINING")
	f.StringVar(&x.BreakGlass, "break-glass", "", "typed reason of an emergency access (judged as if opened now)")
	f.StringVar(&x.LegalBasis, "legal-basis", "", "law or order behind a public-health use")
	f.BoolVar(&x.MFA, "mfa", false, "assume a session signed in with a second factor")
	f.BoolVar(&asJSON, "json", false, "print the decision as JSON")
	cmd.MarkFlagRequired("user")
	cmd.MarkFlagRequired("patient")
	return cmd
}

func newAnomalyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "anomaly", Short: "Access anomaly detection over the audit log"}
	cmd.AddCommand(&cobra.Command{
		Use:   "scan",
		Short: "Scan the audit events not yet scanned and raise alerts for the security officer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			rep, err := h.Anomalies().ScanAll(cmd.Context())
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
		},
	})
	return cmd
}
