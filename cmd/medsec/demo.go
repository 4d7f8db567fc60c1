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
				if generated && rep.Dir != "" {
					// stdout stays one JSON object; the secret goes to the person
					fmt.Fprintf(cmd.ErrOrStderr(), "key passphrase of the kept installation in %s: %s (export MEDSEC_PASSPHRASE=… to open it)\n", rep.Dir, opt.Passphrase)
				}
			} else {
				printReport(out, rep)
				if generated && rep.Dir != "" {
					fmt.Fprintf(out, "  key passphrase         %s  (export MEDSEC_PASSPHRASE=… to open the kept installation)\n", opt.Passphrase)
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
	line := func(label, f string, a ...any) { fmt.Fprintf(w, "  %-20s "+f+"\n", append([]any{label}, a...)...) }
	fmt.Fprintf(w, "\nmedsec demo: %s, %.1f s\n\n", r.Hospital, float64(r.DurationMS)/1000)
	line("patients", "%d registered, identities sealed with per-patient keys", len(r.Patients))
	line("device readings", "%d sent, %d stored via %s, %d forged refused", r.PHD.Sent, r.PHD.Stored, r.PHD.Gateway, r.PHD.RejectedForged)
	line("imaging CD", "%d images stored (%d study), %d quarantined", r.Imaging.Stored, r.Imaging.Studies, r.Imaging.Quarantined)
	line("records", "%d stored, %d read, each read audited first", r.Records.Stored, r.Records.Read)
	line("access (policy)", "nurse other ward %s, physician own patient %s, break-glass %s, researcher no consent %s",
		r.Access["nurse_other_ward"], r.Access["physician_own_patient"], r.Access["break_glass"], r.Access["researcher_no_consent"])
	line("provision", "pharmacy opened the prescription: %s, one-byte change caught: %s, receipt imported: %s",
		ok(r.Provision.Opened), ok(r.Provision.TamperDetected), ok(r.Provision.ReceiptImported))
	d := r.Dataset
	line("AI dataset", "%d rows of %d consented patients, k=%d, risk %.3f (limit %.2f), manifest verified: %s, stale after a withdrawal: %s",
		d.Rows, d.Consented, d.K, d.Risk, d.RiskLimit, ok(d.ManifestVerified), ok(d.StaleAfterWithdrawal && d.TracedStale))
	line("erasure", "%s on request: %d sealed record(s) shredded, %d copy(ies) outside asked back, plaintext left %d, backups unreadable after the key rotation: %s",
		r.Trace.Patient, r.Erasure.Records, r.Erasure.CopiesOutside, r.Erasure.PlaintextLeft, ok(r.Erasure.BackupsUnreadable))
	line("crypto-shredding", "%s: a read now fails with \"%s\"", r.Destruction.Pseudonym, r.Destruction.ReadError)
	line("audit log", "%d events, verified: %s (after destruction: %s)", r.Audit.Events, ok(r.Audit.Verified), ok(r.Destruction.AuditVerifiedAfter))
	line("plaintext PHI", "%d found in %d file reads of the data directory", r.Plaintext.Hits, r.Plaintext.FilesScanned)
	for i, lines := range [][]string{r.Trace.Before, r.Trace.After} {
		fmt.Fprintf(w, "\n  where %s's data is, %s erasure:\n", r.Trace.Patient, []string{"before", "after"}[i])
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	if r.Dir != "" {
		fmt.Fprintf(w, "\n  data directory (kept)  %s\n", r.Dir)
	}
}
