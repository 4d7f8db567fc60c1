package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
)

func newLifecycleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "lifecycle", Short: "Retention: the schedule, legal holds, retention runs and their signed certificates, alerts"}
	cmd.AddCommand(newLifecycleRunCmd(), newLifecycleScheduleCmd(), newLifecycleHoldCmd(), newLifecycleAlertsCmd(), newLifecycleVerifyCmd())
	return cmd
}

func newLifecycleRunCmd() *cobra.Command {
	var dry, asJSON bool
	var certOut string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Destroy what the retention schedule says has expired, except what a legal hold keeps, and sign a certificate",
		Long: `run finds the data whose retention period has ended: a patient whose register
and every record have expired is crypto-shredded (the data key is destroyed, so
every copy here is unreadable, and backups made before the run are too once
'medsec keys rotate' has retired the key-encryption key that wrapped it); expired records of everyone else
are deleted row by row. Data under a legal hold is kept and listed. The run
writes a destruction certificate signed with the hospital key (what, how much,
which rule, when, by whom; no PHI). --now runs as of another time, at most a day
ahead of this machine's clock and never before the last run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now, err := clockFlag(cmd, false)
			if err != nil {
				return err
			}
			l, err := openLife(cmd, now)
			if err != nil {
				return err
			}
			defer l.close(cmd.Context())
			res, err := l.engine.Run(cmd.Context(), lifecycle.RunOptions{DryRun: dry})
			if err != nil {
				return err
			}
			if certOut != "" && res.Signed != nil {
				if err := writeOut(cmd, certOut, res.Signed, 0o644); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res.Certificate)
			}
			printRun(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().String("now", "", "run as of this time (RFC 3339 or a date)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "count what would be destroyed; destroy nothing")
	cmd.Flags().StringVar(&certOut, "certificate", "", "also write the signed certificate to this new file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the certificate as JSON")
	return cmd
}

func printRun(w io.Writer, res *lifecycle.RunResult) {
	c := res.Certificate
	verb := "destroyed"
	if res.DryRun {
		verb = "would destroy"
	}
	fmt.Fprintf(w, "retention run %s (schedule %s) as of %s: %s %d records of %d patients\n", c.ID, c.Schedule, c.RunAt.UTC().Format(time.RFC3339), verb, c.Records, c.Patients)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  RULE\tCLASS\tMETHOD\tEFFECTIVE BEFORE\tRECORDS\tPATIENTS")
	for _, it := range c.Destroyed {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\n", it.Rule, it.Class, it.Method, day(it.Cutoff), it.Records, it.Patients)
	}
	for _, h := range c.Held {
		fmt.Fprintf(tw, "  hold %s\t%s\tkept: %s\t\t%d\t%d\n", h.Hold, h.Class, h.Reason, h.Records, h.Patients)
	}
	tw.Flush()
	for _, n := range c.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if c.RefusedByPolicy > 0 {
		fmt.Fprintf(w, "  the access policy refused %d destructions (see the audit log)\n", c.RefusedByPolicy)
	}
	if !res.DryRun {
		fmt.Fprintf(w, "  certificate %s signed by %s\n", c.ID, c.Hospital)
	}
}

func newLifecycleScheduleCmd() *cobra.Command {
	var profile string
	var write bool
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Print the retention schedule in force, or an example profile (kr, us); --write adopts a profile for editing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profile != "" && !write {
				_, raw, err := lifecycle.Profile(profile)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(raw)
				return err
			}
			dir, _ := cmd.Flags().GetString("data")
			if write {
				return adoptProfile(cmd, dir, profile)
			}
			return withLife(cmd, func(l *life) error {
				out, err := yaml.Marshal(l.engine.Schedule())
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "an example profile: kr or us")
	cmd.Flags().BoolVar(&write, "write", false, "write the profile to the data directory's "+lifecycle.ScheduleFile+" to edit it")
	return cmd
}

func adoptProfile(cmd *cobra.Command, dir, profile string) error {
	if profile == "" {
		return errors.New("--write needs --profile kr or --profile us")
	}
	_, raw, err := lifecycle.Profile(profile)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, lifecycle.ScheduleFile)
	if err := writeOut(cmd, path, raw, 0o600); err != nil {
		return fmt.Errorf("write %s: %w (edit the existing file instead)", path, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s from profile %s: edit it, then medsec lifecycle schedule shows what is in force\n", path, profile)
	return nil
}

func newLifecycleHoldCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hold", Short: "Legal holds: data they cover is never destroyed until they are released"}
	var patient, class, reason string
	var all bool
	place := &cobra.Command{
		Use:   "place",
		Short: "Place a legal hold on a patient, a data class, a class of a patient, or (--all) everything",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if patient == "" && class == "" && !all {
				return errors.New("name what the hold covers: --patient, --class, both, or --all")
			}
			return asLifeStaff(cmd, func(l *life, by identity.Principal) error {
				h, err := l.engine.PlaceHold(cmd.Context(), by, lifecycle.Hold{PatientID: patient, Class: class, Reason: reason})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "hold %s placed on %s: %s\n", h.ID, h.Scope(), h.Reason)
				return nil
			})
		},
	}
	place.Flags().StringVar(&patient, "patient", "", "the patient's id")
	place.Flags().StringVar(&class, "class", "", "a data class")
	place.Flags().BoolVar(&all, "all", false, "hold everything")
	place.Flags().StringVar(&reason, "reason", "", "why (a case number, an order)")
	addStaffFlags(place, "places the hold (a security officer or IT administrator)")
	cmd.AddCommand(place, newHoldReleaseCmd(), newHoldListCmd())
	return cmd
}

func newHoldReleaseCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "release HOLD",
		Short: "Release a legal hold; the data it kept is subject to retention again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return asLifeStaff(cmd, func(l *life, by identity.Principal) error {
				if err := l.engine.ReleaseHold(cmd.Context(), by, args[0], reason); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "hold %s released\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	addStaffFlags(cmd, "releases the hold")
	return cmd
}

func newHoldListCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the legal holds in force (--all: released ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				hs, err := l.engine.Holds(cmd.Context(), all)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "HOLD\tCOVERS\tREASON\tPLACED\tBY\tRELEASED")
				for _, h := range hs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Scope(), h.Reason, day(h.Placed), h.PlacedBy, day(h.Released))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include released holds")
	return cmd
}

// lifeAlerts are the inbox kinds the life cycle raises.
var lifeAlerts = []string{alerts.KindOverdue, alerts.KindProvision, alerts.KindRetention}

func newLifecycleAlertsCmd() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List the life cycle's open alerts (overdue packages, copies outside after an erasure)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				var as []alerts.Alert
				for _, k := range lifeAlerts {
					some, err := l.h.Alerts.List(cmd.Context(), alerts.Filter{OpenOnly: !all, Kind: k})
					if err != nil {
						return err
					}
					as = append(as, some...)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), as)
				}
				for _, a := range as {
					fmt.Fprintf(cmd.OutOrStdout(), "%s  %-20s %-8s %s\n", a.Created.UTC().Format(time.RFC3339), a.Kind, a.Severity, a.Summary)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d alerts\n", len(as))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include acknowledged alerts")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLifecycleVerifyCmd() *cobra.Command {
	var hospitalKey string
	cmd := &cobra.Command{
		Use:   "verify-certificate FILE",
		Short: "Check a destruction certificate against the hospital's public key (for auditors; needs no data directory)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			vkey, err := keyArg(hospitalKey, "--hospital-key")
			if err != nil {
				return err
			}
			c, err := lifecycle.VerifyCertificate(raw, vkey)
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "CERTIFICATE FAILS: %v\n", err)
				return exitError{code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "certificate %s holds: signed by %s; run %s by %s destroyed %d records of %d patients\n",
				c.ID, c.Hospital, c.RunAt.UTC().Format(time.RFC3339), c.By, c.Records, c.Patients)
			return nil
		},
	}
	cmd.Flags().StringVar(&hospitalKey, "hospital-key", "", "the hospital's public key (medsec provision hospital-key), or a file holding it")
	cmd.MarkFlagRequired("hospital-key")
	return cmd
}

// newPatientCmd: a patient's requests about their own data.
func newPatientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "patient", Short: "A patient's requests: erasure, a copy of their record, who accessed it"}
	cmd.AddCommand(newPatientEraseCmd(), newPatientExportCmd(), newPatientHistoryCmd())
	return cmd
}

func newPatientEraseCmd() *cobra.Command {
	var r lifecycle.PatientRequest
	cmd := &cobra.Command{
		Use:   "erase",
		Short: "Destroy the patient's data on request, unless retention law or a legal hold forbids it now (then say until when)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				// An erasure is carried out by a signed-in security officer
				// (the policy decides for them), never by whoever runs the CLI.
				by, err := staffPrincipal(cmd, l.h)
				if err != nil {
					return err
				}
				r.By = &by
				if r.Received == "" {
					r.Received = by.ID
				}
				e, err := l.engine.Erase(cmd.Context(), r)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "patient %s erased: crypto-shredded with %d records\n", e.Patient, e.Records)
				for _, o := range e.Outside {
					fmt.Fprintf(cmd.OutOrStdout(), "  still outside: %s at %s (%s); its destruction was requested (medsec lifecycle alerts)\n", o.Place, o.Holder, o.State)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&r.PatientID, "patient", "", "the patient's id")
	cmd.Flags().StringVar(&r.Reference, "request", "", "the request's number in the hospital's register")
	cmd.Flags().StringVar(&r.Received, "received-by", "", "who checked the patient's identity (default: the officer)")
	addStaffFlags(cmd, "carries out the erasure: a security officer, with --totp")
	cmd.MarkFlagRequired("patient")
	cmd.MarkFlagRequired("request")
	return cmd
}

// patientReadFlags are the flags of a patient's own read.
func patientReadFlags(cmd *cobra.Command, patient *string) {
	cmd.Flags().StringVar(patient, "patient", "", "the patient's id")
	addStaffFlags(cmd, "at the registration desk issues the patient a quarter-hour of portal access (or set MEDSEC_PORTAL_TOKEN)")
	cmd.MarkFlagRequired("patient")
}

func newPatientExportCmd() *cobra.Command {
	var patient, ref, out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Give the patient a copy of their whole record as a FHIR Bundle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				p, err := patientPrincipal(cmd, l.h, patient)
				if err != nil {
					return err
				}
				b, err := l.engine.ExportForPatient(cmd.Context(), p, ref)
				if err != nil {
					return err
				}
				return writeOut(cmd, out, append(b, '\n'), 0o600)
			})
		},
	}
	patientReadFlags(cmd, &patient)
	cmd.Flags().StringVar(&ref, "request", "", "the request's number in the hospital's register")
	cmd.Flags().StringVar(&out, "out", "", "write to this new file (default: standard output)")
	cmd.MarkFlagRequired("request")
	return cmd
}

func newPatientHistoryCmd() *cobra.Command {
	var patient string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "access-history",
		Short: "List who read, wrote, exported or was refused the patient's record, when and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				p, err := patientPrincipal(cmd, l.h, patient)
				if err != nil {
					return err
				}
				evs, err := l.h.Door.AccessHistory(cmd.Context(), p, records.AuditFilter{Limit: 1000})
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), evs)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TIME\tWHO\tROLE\tACTION\tPURPOSE\tOUTCOME")
				for _, e := range evs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Actor, e.Role, e.Action, e.Purpose, e.Outcome)
				}
				return w.Flush()
			})
		},
	}
	patientReadFlags(cmd, &patient)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// newTraceCmd: the data map.
func newTraceCmd() *cobra.Command {
	var patient string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Show every place a patient's data is or went, and the life-cycle stage of each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLife(cmd, func(l *life) error {
				m, err := traceFor(cmd, l, patient)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), m)
				}
				printTrace(cmd.OutOrStdout(), m)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&patient, "patient", "", "the patient's id")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addStaffFlags(cmd, "asks: a security officer (with --totp); without it, the patient with MEDSEC_PORTAL_TOKEN")
	cmd.MarkFlagRequired("patient")
	return cmd
}

// traceFor draws the map for the security officer named by --as, or for
// the patient whose portal token is in MEDSEC_PORTAL_TOKEN.
func traceFor(cmd *cobra.Command, l *life, patient string) (lifecycle.DataMap, error) {
	if as, _ := cmd.Flags().GetString("as"); as != "" {
		who, err := staffPrincipal(cmd, l.h)
		if err != nil {
			return lifecycle.DataMap{}, err
		}
		return l.engine.Trace(cmd.Context(), records.Request{Who: who, Purpose: lifecycle.PurposeOperations}, patient)
	}
	if os.Getenv("MEDSEC_PORTAL_TOKEN") == "" {
		return lifecycle.DataMap{}, errors.New("name who asks: --as USERNAME (a security officer, with --totp), or the patient's portal token in MEDSEC_PORTAL_TOKEN")
	}
	p, err := patientPrincipal(cmd, l.h, patient)
	if err != nil {
		return lifecycle.DataMap{}, err
	}
	if m, err := l.engine.TraceOwn(cmd.Context(), p); err != nil || m.PatientID == patient {
		return m, err
	}
	return lifecycle.DataMap{}, fmt.Errorf("the portal token is not patient %s's", patient)
}

func printTrace(w io.Writer, m lifecycle.DataMap) {
	fmt.Fprintf(w, "patient %s (registered %s): %s\n", m.Patient, day(m.Registered), m.State)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  WHERE\tHOLDER\tCOUNT\tSTAGE\tSTATE")
	for _, l := range m.Locations {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", l.Place, l.Holder, l.Count, l.Stage, l.State)
	}
	tw.Flush()
	var missing []string
	for _, h := range m.Hooks {
		if !h.Connected {
			missing = append(missing, h.Note)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "  not yet traced: %s\n", strings.Join(missing, "; "))
	}
}
