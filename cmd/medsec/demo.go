package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var asJSON, keep, serve bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a small hospital's whole data life cycle in one process and report what happened",
		Long: `demo runs a hospital on the embedded database (a temporary directory unless
--data is given): synthetic patients registered with sealed identities, records
written and read through the one door with every access audited, the audit log
verified, a patient destroyed by crypto-shredding while the log still verifies,
and every file searched for identifying values left in plaintext.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt := demo.Options{Keep: keep || serve}
			if cmd.Flags().Changed("data") {
				opt.Dir, _ = cmd.Flags().GetString("data")
				opt.Passphrase = []byte(os.Getenv("MEDSEC_PASSPHRASE"))
			}
			started := time.Now()
			// A kept installation must be openable afterwards: without
			// MEDSEC_PASSPHRASE the demo makes one and says it.
			generated := false
			if (serve || opt.Keep || opt.Dir != "") && len(opt.Passphrase) == 0 {
				opt.Passphrase, generated = []byte(rand.Text()), true
			}
			out := cmd.OutOrStdout()
			if !asJSON {
				opt.Log = func(f string, a ...any) { fmt.Fprintf(out, "• "+f+"\n", a...) }
			}
			rep, err := demo.Run(cmd.Context(), opt)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				printReport(out, rep)
				if generated && rep.Dir != "" {
					fmt.Fprintf(out, "  key passphrase               %s  (export MEDSEC_PASSPHRASE=… to open the kept installation)\n", opt.Passphrase)
				}
			}
			if err != nil || !serve {
				return err
			}
			return serveDemo(cmd, rep, opt.Passphrase, started, !cmd.Flags().Changed("data") && !keep)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of the text report")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data directory")
	cmd.Flags().BoolVar(&serve, "serve", false, "leave the demo hospital running: serve the console, portal and a waiting-room display, and print the address and the demo accounts")
	return cmd
}

func printReport(w io.Writer, r *demo.Report) {
	ok := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	fmt.Fprintf(w, "\nmedsec demo: %s, in %.1f s\n", r.Hospital, float64(r.DurationMS)/1000)
	fmt.Fprintf(w, "  patients registered          %d (identities sealed per patient)\n", len(r.Patients))
	fmt.Fprintf(w, "  records stored / read        %d / %d (each read audited first)\n", r.Records.Stored, r.Records.Read)
	fmt.Fprintf(w, "  audit log                    %d events, verified: %s\n", r.Audit.Events, ok(r.Audit.Verified))
	fmt.Fprintf(w, "  crypto-shredded patient      %s\n", r.Destruction.Pseudonym)
	fmt.Fprintf(w, "    read now fails with        %s\n", r.Destruction.ReadError)
	fmt.Fprintf(w, "    audit still verifies       %s\n", ok(r.Destruction.AuditVerifiedAfter))
	fmt.Fprintf(w, "  prescription to a pharmacy   opened: %s, one-byte change detected: %s, receipt imported: %s\n",
		ok(r.Provision.Opened), ok(r.Provision.TamperDetected), ok(r.Provision.ReceiptImported))
	for _, f := range r.Provision.Flows {
		fmt.Fprintf(w, "    %-8s to %-15s %s\n", f.Purpose, f.Recipient, f.Outcome)
	}
	fmt.Fprintf(w, "  erasure on request           %s: %d records shredded, %d copies outside asked back, plaintext left %d, audit verifies: %s\n",
		r.Erasure.Patient, r.Erasure.Records, r.Erasure.CopiesOutside, r.Erasure.PlaintextLeft, ok(r.Erasure.AuditVerified))
	fmt.Fprintf(w, "    a current patient's request %s\n", r.Erasure.Refused)
	for i, lines := range [][]string{r.Trace.Before, r.Trace.After} {
		fmt.Fprintf(w, "  trace of %s %s\n", r.Trace.Patient, []string{"before", "after"}[i])
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	fmt.Fprintf(w, "  device readings (PHD)        %d sent, %d stored via %s, %d forged refused\n", r.PHD.Sent, r.PHD.Stored, r.PHD.Gateway, r.PHD.RejectedForged)
	fmt.Fprintf(w, "  imaging CD import (PACS)     %d images stored (%d study), %d quarantined\n", r.Imaging.Stored, r.Imaging.Studies, r.Imaging.Quarantined)
	for _, why := range r.Imaging.Why {
		fmt.Fprintf(w, "    kept out                   %s\n", why)
	}
	d := r.Dataset
	fmt.Fprintf(w, "  AI dataset %s %d rows of %d patients (%d candidates, %d consented), k=%d, risk %.3f ≤ %.2f, manifest verified: %s, one-byte change detected: %s, stale after a withdrawal: %s\n",
		d.ID, d.Rows, d.Patients, d.Candidates, d.Consented, d.K, d.Risk, d.RiskLimit, ok(d.ManifestVerified), ok(d.TamperDetected), ok(d.StaleAfterWithdrawal && d.TracedStale))
	fmt.Fprintf(w, "  plaintext PHI in data files  %d found in %d file reads\n", r.Plaintext.Hits, r.Plaintext.FilesScanned)
	if r.Dir != "" {
		fmt.Fprintf(w, "  data directory (kept)        %s\n", r.Dir)
	}
}
