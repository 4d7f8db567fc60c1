package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/deid/text"
	"github.com/medsec/medsec/internal/imaging/dicomdeid"
)

// newDeidCmd groups the de-identification commands. `deid text` and
// `deid table` join `deid dicom` here.
func newDeidCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "deid", Short: "De-identify data for research and AI datasets"}
	cmd.AddCommand(newDeidDICOMCmd(), newDeidTextCmd(), newDeidTableCmd())
	return cmd
}

// dicomOptions maps --option names to the profile options of PS3.15
// Annex E that medsec implements.
var dicomOptions = map[string]func(o *dicomdeid.Options){
	"retain-longitudinal-modified-dates": func(o *dicomdeid.Options) { o.RetainLongitudinalModifiedDates = true },
	"retain-patient-characteristics":     func(o *dicomdeid.Options) { o.RetainPatientCharacteristics = true },
	"clean-descriptors":                  func(o *dicomdeid.Options) { o.CleanDescriptors = true },
	"retain-device-identity":             func(o *dicomdeid.Options) { o.RetainDeviceIdentity = true },
}

func dicomOptionNames() string {
	names := make([]string, 0, len(dicomOptions))
	for n := range dicomOptions {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func newDeidDICOMCmd() *cobra.Command {
	var options []string
	var secretFile string
	var acceptBurnedIn bool
	var workers int
	cmd := &cobra.Command{
		Use:   "dicom IN OUT [--option NAME]...",
		Short: "De-identify a DICOM file or a directory tree (PS3.15 Annex E Basic Profile and options)",
		Long: `deid dicom applies the Basic Application Level Confidentiality Profile of
DICOM PS3.15 Annex E to IN (a file or a directory) and writes OUT (a file, or
a directory with the same tree). UIDs are remapped consistently under the
project secret (--secret-file, or MEDSEC_DEID_SECRET: at least 32 bytes; keep
it with the dataset's keys), private attributes are removed, Patient Identity
Removed and the De-identification Method are written. Images marked with
burned-in annotation are refused unless --accept-burned-in.
Options (--option, repeatable): ` + dicomOptionNames() + `.
Exit status 1 when any file could not be de-identified.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := deidDICOMOptions(options, secretFile)
			if err != nil {
				return err
			}
			opts.AcceptBurnedIn, opts.Workers = acceptBurnedIn, workers
			d, err := dicomdeid.New(opts)
			if err != nil {
				return err
			}
			st, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			if !st.IsDir() {
				return deidDICOMFile(cmd, d, args[0], args[1])
			}
			return deidDICOMDir(cmd, d, args[0], args[1])
		},
	}
	cmd.Flags().StringArrayVar(&options, "option", nil, "profile option to apply: "+dicomOptionNames())
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file holding the project secret (at least 32 bytes)")
	cmd.Flags().BoolVar(&acceptBurnedIn, "accept-burned-in", false, "de-identify images marked with burned-in annotation (their pixels are not cleaned)")
	cmd.Flags().IntVar(&workers, "workers", 0, "files de-identified at once (default 2)")
	return cmd
}

func deidDICOMOptions(names []string, secretFile string) (dicomdeid.Options, error) {
	var o dicomdeid.Options
	for _, n := range names {
		set, ok := dicomOptions[strings.ToLower(strings.TrimSpace(n))]
		if !ok {
			return o, fmt.Errorf("unknown option %q: use %s", n, dicomOptionNames())
		}
		set(&o)
	}
	if o.CleanDescriptors {
		// The free-text de-identifier cleans descriptions and comments.
		red := text.NewRedactor(text.Options{Mode: text.Tags})
		o.CleanText = func(s string) string { out, _ := red.Redact(s); return out }
	}
	secret, err := projectSecret(secretFile)
	o.ProjectSecret = secret
	return o, err
}

func projectSecret(file string) ([]byte, error) {
	var secret []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("project secret: %w", err)
		}
		secret = bytes.TrimRight(b, "\r\n")
	case os.Getenv("MEDSEC_DEID_SECRET") != "":
		secret = []byte(os.Getenv("MEDSEC_DEID_SECRET"))
	default:
		return nil, errors.New("de-identification needs a project secret: --secret-file FILE or MEDSEC_DEID_SECRET (at least 32 random bytes; the same secret keeps UIDs consistent across runs)")
	}
	if len(secret) < 32 {
		return nil, fmt.Errorf("project secret of %d bytes: use at least 32 random bytes", len(secret))
	}
	return secret, nil
}

func deidDICOMFile(cmd *cobra.Command, d *dicomdeid.Deidentifier, in, out string) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	var buf bytes.Buffer
	rep, err := d.File(cmd.Context(), src, &buf)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "de-identified %s -> %s: patient %s, %d attributes removed, %d replaced\n",
		in, out, rep.Pseudonym, len(rep.Removed()), len(rep.Replaced()))
	return nil
}

func deidDICOMDir(cmd *cobra.Command, d *dicomdeid.Deidentifier, in, out string) error {
	p := newCountProgress(cmd.ErrOrStderr(), "de-identifying")
	start := time.Now()
	sum, err := d.Dir(cmd.Context(), in, out, p.set)
	p.finish()
	w := cmd.OutOrStdout()
	for _, f := range sum.Failures {
		fmt.Fprintf(w, "FAILED  %s\n", f)
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(w, "de-identified %d of %d files into %s in %.1f s (%.0f files/s); %d failed, %d skipped (not regular files)\n",
		sum.Written, sum.Files, out, secs, float64(sum.Written)/max(secs, 1e-9), sum.Failed, sum.Skipped)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		return exitError{code: 1}
	}
	return nil
}

// countProgress shows done/total: a bar on a terminal, otherwise a plain
// line at every tenth and at the end, so logs stay readable.
type countProgress struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	bar   *progressbar.ProgressBar
	tenth int
}

func newCountProgress(w io.Writer, what string) *countProgress {
	return &countProgress{w: w, what: what}
}

func (p *countProgress) set(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil && isTerminal(p.w) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.what),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionClearOnFinish())
	}
	if p.bar != nil {
		p.bar.Set(done)
		return
	}
	if t := done * 10 / max(total, 1); t > p.tenth || done == total {
		p.tenth = t
		fmt.Fprintf(p.w, "%s: %d/%d files\n", p.what, done, total)
	}
}

func (p *countProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
	}
}
