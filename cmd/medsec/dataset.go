package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/records"
)

func newDatasetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Consented, de-identified, traceable datasets for medical AI",
		Long: `A dataset is made through the one door as a researcher, for research (HRESCH) or
model training (MLTRAINING), of the patients whose consent permits that purpose only;
it is de-identified to the spec's privacy model, refused above its risk limit, and
written with a signed manifest. Its lineage stays in the hospital, sealed.`,
	}
	cmd.AddCommand(newDatasetCreateCmd(), newDatasetVerifyCmd(), newDatasetListCmd(), newDatasetKeyCmd(), newDatasetReidentifyCmd())
	return cmd
}

// datasetService assembles the dataset register of an open installation.
func datasetService(ctx context.Context, h *hospital.Hospital, now func() time.Time, operator string) (*dataset.Service, error) {
	return dataset.New(ctx, dataset.Config{DB: h.DB, Door: h.Door, Keys: h.Keys, Audit: h.Audit, Alerts: h.Alerts,
		HospitalID: h.Config.Hospital.ID, Now: now, Operator: operator})
}

func openDatasets(cmd *cobra.Command) (*hospital.Hospital, *dataset.Service, error) {
	h, err := openHospital(cmd)
	if err != nil {
		return nil, nil, err
	}
	s, err := datasetService(cmd.Context(), h, nil, cliActor())
	if err != nil {
		h.Close(cmd.Context())
		return nil, nil, err
	}
	return h, s, nil
}

// progressFor draws a bar on a terminal and plain lines elsewhere.
func progressFor(w io.Writer) dataset.Progress {
	f, ok := w.(*os.File)
	return dataset.NewProgress(w, ok && term.IsTerminal(int(f.Fd())), 5*time.Second)
}

func newDatasetCreateCmd() *cobra.Command {
	var specFile, out, format string
	var unit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --spec FILE --out DIR",
		Short: "Make a dataset from a spec (resumes an interrupted job of the same DIR and spec)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, raw, err := dataset.ReadSpec(os.DirFS(filepath.Dir(specFile)), filepath.Base(specFile))
			if err != nil {
				return err
			}
			h, svc, err := openDatasets(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			who, err := staffPrincipal(cmd, h)
			if err != nil {
				return err
			}
			c, err := svc.Create(cmd.Context(), dataset.CreateRequest{Who: who, Spec: s, SpecYAML: raw, Out: out, Format: format,
				UnitSize: unit, Progress: progressFor(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), c.Manifest)
			}
			printCreated(cmd.OutOrStdout(), c)
			return nil
		},
	}
	cmd.Flags().StringVar(&specFile, "spec", "", "the dataset spec (YAML)")
	cmd.Flags().StringVar(&out, "out", "", "the dataset directory to make (must not exist)")
	cmd.Flags().StringVar(&format, "format", "", "parquet, csv or ndjson (default: the spec's, else parquet)")
	cmd.Flags().IntVar(&unit, "unit-size", 0, "patients read and sealed per resumable unit (default 200)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	addStaffFlags(cmd, "makes the dataset: a researcher")
	cmd.MarkFlagRequired("spec")
	cmd.MarkFlagRequired("out")
	return cmd
}

func printCreated(w io.Writer, c *dataset.Created) {
	m := c.Manifest
	fmt.Fprintf(w, "dataset %s (%s) for %s written to %s\n", m.Dataset.ID, m.Dataset.Name, m.Dataset.Purpose, c.Dir)
	fmt.Fprintf(w, "cohort: %d candidates, %d consented, %d excluded; %d rows taken, %d suppressed, %d rows of %d patients released\n",
		m.Cohort.Candidates, m.Cohort.Consented, m.Cohort.Excluded, m.Cohort.RowsBefore, m.Cohort.Suppressed, m.Cohort.Rows, m.Cohort.Patients)
	fmt.Fprintf(w, "privacy: %s, k=%d asked, k=%d reached (at least %d patients per class)\n", m.Privacy.Model, m.Privacy.K, m.Privacy.Reached.K, m.Privacy.PatientsPerClassMin)
	fmt.Fprintf(w, "risk: prosecutor max %.3f (limit %.3f), average %.3f; marketer %.3f\n", m.Risk.ProsecutorMax, m.Risk.Limit, m.Risk.ProsecutorAvg, m.Risk.Marketer)
	if m.Text != nil {
		fmt.Fprintf(w, "free text: %d cells redacted (%s), %d identifiers found\n", m.Text.Cells, m.Text.Mode, sumFindings(m.Text.Findings))
	}
	for _, f := range m.Files {
		fmt.Fprintf(w, "file: %s, %d bytes, sha256 %s\n", f.Name, f.Bytes, f.SHA256)
	}
	if c.ResumedUnits > 0 {
		fmt.Fprintf(w, "resumed: %d units of the interrupted job were reused after their hashes checked\n", c.ResumedUnits)
	}
	fmt.Fprintf(w, "manifest: %s, signed (check with: medsec dataset verify %s)\n", filepath.Join(c.Dir, dataset.ManifestFile), c.Dir)
}

func sumFindings(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func newDatasetVerifyCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a dataset's signature and the hash of every file; name any change",
		Long: `Without --key it checks against this installation's dataset key and register.
With --key (the verifier key from "medsec dataset key", or a file holding it) it
needs no installation: that is how the AI team or an auditor checks a dataset.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := verifyDataset(cmd, args[0], key)
			var ve *dataset.VerifyError
			if errors.As(err, &ve) {
				for _, p := range ve.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), "  "+p)
				}
				return fmt.Errorf("dataset %s does not verify (%d problems above)", args[0], len(ve.Problems))
			}
			if err != nil {
				return err
			}
			m := v.Manifest
			fmt.Fprintf(cmd.OutOrStdout(), "verified: dataset %s (%s, %s), %d rows in %d files (%d bytes), signed by %s\n",
				m.Dataset.ID, m.Dataset.Name, m.Dataset.Purpose, m.Dataset.Rows, v.Files, v.Bytes, v.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "verifier key (or a file holding it); without it, this installation's")
	return cmd
}

func verifyDataset(cmd *cobra.Command, dir, key string) (*dataset.Verification, error) {
	if key != "" {
		k, err := keyArg(key, "verifier key")
		if err != nil {
			return nil, err
		}
		return dataset.VerifyDir(dir, k)
	}
	h, svc, err := openDatasets(cmd)
	if err != nil {
		return nil, err
	}
	defer h.Close(cmd.Context())
	return svc.Verify(cmd.Context(), dir)
}

func newDatasetListCmd() *cobra.Command {
	var stale, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the datasets; --stale: those with a patient who withdrew consent or was erased since",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, svc, err := openDatasets(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			ins, err := svc.List(cmd.Context(), stale)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ins)
			}
			printDatasets(cmd.OutOrStdout(), ins, stale)
			return nil
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "only datasets to rebuild, with the members who left")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDatasets(w io.Writer, ins []dataset.Info, stale bool) {
	if len(ins) == 0 {
		if stale {
			fmt.Fprintln(w, "no stale dataset: every member of every dataset still consents and is not erased")
		} else {
			fmt.Fprintln(w, "no dataset")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPURPOSE\tSTATE\tCREATED\tROWS\tPATIENTS\tK\tBY")
	for _, in := range ins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", in.ID, in.Name, in.Purpose, in.State, in.Created.UTC().Format(time.DateOnly),
			in.Rows, in.Patients, in.K, in.CreatedBy)
	}
	tw.Flush()
	for _, in := range ins {
		for _, m := range in.Stale {
			fmt.Fprintf(w, "  %s: %s %s since %s — rebuild without them\n", in.ID, m.Patient, m.Reason, m.Since.UTC().Format(time.DateOnly))
		}
		if in.State != dataset.StateComplete && in.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", in.ID, in.Note)
		}
	}
}

func newDatasetKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "key",
		Short: "Print the verifier key of this hospital's dataset manifests (give it to the AI team)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, svc, err := openDatasets(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			fmt.Fprintln(cmd.OutOrStdout(), svc.Signer().VerifierKey())
			return nil
		},
	}
}

func newDatasetReidentifyCmd() *cobra.Command {
	var pseudonym, reason string
	var row int
	cmd := &cobra.Command{
		Use:   "reidentify DATASET-ID (--pseudonym P | --row N) --reason TEXT",
		Short: "Security officer only: which patient and source records a dataset row came from (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := reidentifyTarget(cmd, pseudonym, row)
			if err != nil {
				return err
			}
			h, svc, err := openDatasets(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			who, err := staffPrincipal(cmd, h)
			if err != nil {
				return err
			}
			r, err := svc.Reidentify(cmd.Context(), records.Request{Who: who, Purpose: "HOPERAT"}, args[0], t, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dataset %s: patient %s (id %s), rows %v (0-based), source records %s\n",
				r.Dataset, r.Patient, r.PatientID, r.Rows, strings.Join(r.Records, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&pseudonym, "pseudonym", "", "the pseudonym the row carries")
	cmd.Flags().IntVar(&row, "row", 0, "the row's position in the data file (1 is the first data row)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (goes into the audit log)")
	addStaffFlags(cmd, "re-identifies: the security officer, with --totp")
	cmd.MarkFlagRequired("reason")
	return cmd
}

func reidentifyTarget(cmd *cobra.Command, pseudonym string, row int) (dataset.Target, error) {
	byRow := cmd.Flags().Changed("row")
	switch {
	case byRow == (pseudonym != ""):
		return dataset.Target{}, errors.New("name the row with --pseudonym or with --row, not both")
	case byRow && row < 1:
		return dataset.Target{}, errors.New("--row counts from 1 (the first data row)")
	case byRow:
		return dataset.Target{Row: row - 1, ByRow: true}, nil
	}
	return dataset.Target{Pseudonym: pseudonym}, nil
}
