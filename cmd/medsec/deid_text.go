package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/deid/text"
)

// `medsec deid text` and `medsec deid table`: the free-text and tabular
// de-identifiers on files from other systems, outside any installation.

func newDeidTextCmd() *cobra.Command {
	var out, mode, secretFile string
	var minConf float64
	cmd := &cobra.Command{
		Use:   "text [FILE…]",
		Short: "Remove protected health information from clinical free text (stdin when no file)",
		Long: `Finds names (Hangul and romanized Korean, Western), dates in many notations, ages
over 89, phone numbers, e-mail, addresses, postal codes, record/account/plan/licence/
device numbers, resident registration numbers, SSNs, URLs and IP addresses, and
replaces them with type tags ("[NAME]") or consistent surrogates (--mode surrogates,
keyed by --secret-file or MEDSEC_DEID_SECRET). Without --out the result goes to
standard output; with --out DIR each FILE is written there under its own name, and
an interrupted run resumes with the files not yet done.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			red, fp, err := textRedactor(mode, secretFile, minConf)
			if err != nil {
				return err
			}
			if out == "" {
				return redactToStdout(cmd, red, args)
			}
			if len(args) == 0 {
				return errors.New("--out DIR redacts the files named on the command line; name at least one")
			}
			res, err := dataset.RedactFiles(cmd.Context(), dataset.TextJob{Inputs: args, OutDir: out, Red: red, Fingerprint: fp,
				Progress: progressFor(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "redacted %d files (%d bytes) into %s", res.Files, res.Bytes, out)
			if res.Resumed > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "; %d were done by the interrupted run and checked by hash", res.Resumed)
			}
			fmt.Fprintln(cmd.ErrOrStderr())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write each FILE into (resumable)")
	cmd.Flags().StringVar(&mode, "mode", "tags", "tags or surrogates")
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file holding the surrogate secret (at least 32 bytes; surrogates mode)")
	cmd.Flags().Float64Var(&minConf, "min-confidence", 0, "drop findings below this confidence (0: the default, 0.5)")
	return cmd
}

func textRedactor(mode, secretFile string, minConf float64) (*text.Redactor, string, error) {
	if !(minConf >= 0 && minConf <= 1) {
		return nil, "", errors.New("--min-confidence is from 0 to 1")
	}
	switch mode {
	case "tags":
		return text.NewRedactor(text.Options{Mode: text.Tags, MinConfidence: minConf}), dataset.TextFingerprint(mode, minConf, nil), nil
	case "surrogates":
		secret, err := projectSecret(secretFile)
		if err != nil {
			return nil, "", err
		}
		opt := text.Options{Mode: text.Surrogates, Secret: secret, MinConfidence: minConf}
		return text.NewRedactor(opt), dataset.TextFingerprint(mode, minConf, secret), nil
	}
	return nil, "", fmt.Errorf("--mode %q: want tags or surrogates", mode)
}

func redactToStdout(cmd *cobra.Command, red *text.Redactor, files []string) error {
	if len(files) == 0 {
		return text.RedactReader(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), red)
	}
	for _, name := range files {
		if err := redactFileTo(cmd, red, name, cmd.OutOrStdout()); err != nil {
			return err
		}
	}
	return nil
}

func redactFileTo(cmd *cobra.Command, red *text.Redactor, name string, w io.Writer) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return text.RedactReader(cmd.Context(), f, w, red)
}

func newDeidTableCmd() *cobra.Command {
	var specFile, out, secretFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "table IN.csv --spec FILE --out OUT.csv",
		Short: "De-identify a table from another system (CSV or Parquet) to a privacy model",
		Long: `Applies a de-identification spec (keep, drop, pseudonymize, date_shift,
micro_aggregate, quasi-identifiers with hierarchies, k / l / t, max_suppression,
max_risk): searches the generalization lattice for the least-loss node that meets the
model, measures the re-identification risk, and writes OUT (.csv, .parquet or .ndjson)
only if the result is within the spec's limits. Pseudonyms and date shifts are keyed
by --secret-file or MEDSEC_DEID_SECRET (the same secret gives the same pseudonyms).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := deidTable(cmd.Context(), args[0], specFile, out, secretFile)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), tableReport(res))
			}
			printTableResult(cmd.ErrOrStderr(), res, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&specFile, "spec", "", "the de-identification spec (YAML)")
	cmd.Flags().StringVar(&out, "out", "", "the file to write (.csv, .parquet or .ndjson; must not exist)")
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file holding the secret for pseudonyms and date shifts (at least 32 bytes)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result (levels, risk, information loss) as JSON")
	cmd.MarkFlagRequired("spec")
	cmd.MarkFlagRequired("out")
	return cmd
}

func deidTable(ctx context.Context, in, specFile, out, secretFile string) (*tabular.Result, error) {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(out)), ".")
	if format != dataset.FormatCSV && format != dataset.FormatParquet && format != dataset.FormatNDJSON {
		return nil, fmt.Errorf("--out %s: name a .csv, .parquet or .ndjson file", out)
	}
	if _, err := os.Stat(out); err == nil {
		return nil, fmt.Errorf("%s already exists; medsec never overwrites an output", out)
	}
	spec, err := tabular.ReadSpec(os.DirFS(filepath.Dir(specFile)), filepath.Base(specFile))
	if err != nil {
		return nil, oneLineError{err}
	}
	t, err := dataset.ReadTableFile(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	var secret []byte
	if len(spec.Pseudonymize) > 0 || spec.DateShift != nil {
		if secret, err = projectSecret(secretFile); err != nil {
			return nil, err
		}
	}
	res, err := tabular.Anonymize(ctx, t, spec, secret)
	if err != nil {
		return nil, fmt.Errorf("%w; nothing was written", err)
	}
	if _, err := dataset.WriteTableFile(out, format, res.Table); err != nil {
		return nil, err
	}
	return res, nil
}

func printTableResult(w io.Writer, res *tabular.Result, out string) {
	fmt.Fprintf(w, "wrote %s: %d of %d rows (%d suppressed)\n", out, len(res.Table.Rows), res.Records, res.Suppressed)
	for _, line := range res.Explanation {
		fmt.Fprintln(w, "  "+line)
	}
	r := res.Risk
	if r.Records > 0 {
		fmt.Fprintf(w, "risk: prosecutor max %.3f, average %.3f; journalist max %.3f; marketer %.3f; %.1f%% of records above %.2f\n",
			r.ProsecutorMax, r.ProsecutorAvg, r.JournalistMax, r.Marketer, 100*r.AtRisk, r.Threshold)
	}
}

// tableReport is `deid table --json`: everything but the table itself.
func tableReport(res *tabular.Result) any {
	return struct {
		Rows, Records, Suppressed int
		Levels                    []tabular.QILevel
		Reached                   tabular.Reached
		Risk                      tabular.Risk
		Loss                      tabular.Loss
		Explanation               []string
	}{len(res.Table.Rows), res.Records, res.Suppressed, res.Levels, res.Reached, res.Risk, res.Loss, res.Explanation}
}

// oneLineError puts a multi-line message (the YAML decoder's list of
// problems) on one line, so the command's one-line error keeps all of it.
type oneLineError struct{ err error }

func (e oneLineError) Error() string {
	lines := strings.Split(strings.TrimSpace(e.err.Error()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

func (e oneLineError) Unwrap() error { return e.err }
