package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/server"
)

// openIntake builds the imaging intake of an open installation.
func openIntake(cmd *cobra.Command, h *hospital.Hospital, scan guard.Config) (*imaging.Intake, error) {
	return imaging.New(cmd.Context(), imaging.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Alerts: h.Alerts, Scan: scan})
}

// imagingSource is the intake as the life-cycle engine's imaging source:
// connected with engine.AddSource, `medsec trace` lists a patient's
// quarantined files and an erasure destroys them.
func imagingSource(ctx context.Context, h *hospital.Hospital) (*imaging.Intake, error) {
	return imaging.New(ctx, imaging.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Alerts: h.Alerts})
}

// mountImaging serves the import API at /imaging/import when the PACS
// capability is on: uploads of up to maxBytes, scanned with scan.
func mountImaging(ctx context.Context, srv *server.Server, h *hospital.Hospital, scan guard.Config, maxBytes int64, logger *slog.Logger) error {
	if !h.Config.Capabilities.PACS {
		return nil
	}
	in, err := imaging.New(ctx, imaging.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Alerts: h.Alerts, Scan: scan})
	if err != nil {
		return err
	}
	api := imaging.NewAPI(in, imaging.APIOptions{Sessions: h.Staff.Sessions, MaxBytes: maxBytes, Logger: logger})
	srv.MountWithLimit("/imaging", api.MaxBytes(), api.Handler())
	return nil
}

// scanFlags are the scanner options import shares with scan.
type scanFlags struct{ clamd, deny string }

func (f *scanFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.clamd, "clamd", "", "also scan with ClamAV: unix:/path/clamd.ctl or tcp:host:3310")
	cmd.Flags().StringVar(&f.deny, "deny", "", "file of SHA-256 digests of known malicious files")
}

func (f *scanFlags) config(cmd *cobra.Command) (guard.Config, error) {
	var cfg guard.Config
	if f.deny != "" {
		d, err := guard.LoadDenyList(f.deny)
		if err != nil {
			return cfg, err
		}
		cfg.DenyList = d
	}
	if f.clamd != "" {
		c, err := guard.NewClamd(f.clamd)
		if err != nil {
			return cfg, err
		}
		if err := c.Ping(cmd.Context()); err != nil {
			return cfg, fmt.Errorf("clamd at %s does not answer: %w", c, err)
		}
		cfg.Clamd = c
	}
	return cfg, nil
}

func newImportCmd() *cobra.Command {
	var origin, media string
	var asJSON bool
	var sf scanFlags
	cmd := &cobra.Command{
		Use:   "import PATH... --origin TEXT",
		Short: "Import imaging media (a CD/DVD/USB tree, .iso, zip) into PACS: scanned file by file, clean DICOM stored sealed, the rest quarantined",
		Long: `import scans every file of the media with medsec's detectors (and ClamAV with
--clamd). Each DICOM image that passes is matched to its patient by the
Patient ID (the hospital's MRN), stored sealed with the patient's key with
its preamble zeroed, and indexed by study, series and instance UID. Every
file that fails is quarantined, sealed, with its findings and an alert for
the security officer: see 'medsec quarantine'. --origin says where the
media came from, in your words; it may name someone, so it is kept sealed
and shown only to the security officer. Audit events and alerts name the
import's id and the --media kind instead. Exit status 1 when any file was
quarantined or could not be imported.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := mediaExists(args); err != nil {
				return err
			}
			scan, err := sf.config(cmd)
			if err != nil {
				return err
			}
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			bar := newScanBar(cmd.ErrOrStderr(), "importing")
			scan.Progress = bar.update
			in, err := openIntake(cmd, h, scan)
			if err != nil {
				return err
			}
			rep, err := in.Import(cmd.Context(), imaging.Request{Paths: args, Origin: origin, Media: media, Operator: cliActor()})
			bar.finish()
			if rep != nil {
				if werr := writeImport(cmd.OutOrStdout(), rep, args, asJSON); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
			if rep.Quarantined+rep.Failed+rep.Unreadable > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&origin, "origin", "", `where the media came from, e.g. "CD from Busan clinic, MRI 2024-05-01" (kept sealed)`)
	cmd.MarkFlagRequired("origin")
	cmd.Flags().StringVar(&media, "media", "", "kind of media: "+strings.Join(imaging.MediaKinds, ", ")+" (default: read from the paths)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the import report as JSON")
	sf.add(cmd)
	return cmd
}

// mediaExists refuses a path that is not there (mistyped, or the media
// not mounted) before the import starts, rather than reporting it as one
// unreadable file of an import that otherwise succeeds.
func mediaExists(paths []string) error {
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("import: %s does not exist: check the path, or mount the media first", p)
		}
	}
	return nil
}

// scanBar is a progress bar on a terminal and nothing elsewhere.
type scanBar struct{ bar *progressbar.ProgressBar }

func newScanBar(w io.Writer, what string) *scanBar {
	if !isTerminal(w) {
		return &scanBar{}
	}
	return &scanBar{bar: progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())}
}

func (b *scanBar) update(p guard.Progress) {
	if b.bar == nil {
		return
	}
	if p.WalkDone && b.bar.GetMax64() != int64(p.Found) {
		b.bar.ChangeMax64(int64(p.Found))
	}
	b.bar.Set(p.Files)
}

func (b *scanBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func writeImport(w io.Writer, rep *imaging.Report, roots []string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range rep.Files {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", outcomeLabel(f.Outcome), shortPath(f.Path, roots), outcomeDetail(f))
	}
	tw.Flush()
	_, err := fmt.Fprintf(w, "import %s from %q: %d files; %d stored (%d studies), %d already stored, %d quarantined, %d skipped, %d unreadable, %d failed\n",
		rep.ID, rep.Origin, rep.Scan.Files, rep.Stored, rep.Studies, rep.Duplicates, rep.Quarantined, rep.Skipped, rep.Unreadable, rep.Failed)
	return err
}

func outcomeLabel(o string) string {
	if o == imaging.Quarantined || o == imaging.Failed || o == imaging.Unreadable {
		return strings.ToUpper(o)
	}
	return o
}

func outcomeDetail(f imaging.FileOutcome) string {
	switch {
	case f.Outcome == imaging.Stored || f.Outcome == imaging.Duplicate:
		return fmt.Sprintf("%s (patient %s)", f.Instance, f.Patient)
	case f.Quarantine != "":
		return f.Reason + " [" + f.Quarantine + "]"
	case f.Reason == "" && len(f.Findings) > 0:
		return f.Findings[0].Reason
	}
	return f.Reason
}

// shortPath shows a path relative to the media root it was found under.
func shortPath(p string, roots []string) string {
	for _, r := range roots {
		if rel, err := filepath.Rel(r, p); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			return filepath.ToSlash(rel)
		}
	}
	return p
}

func newQuarantineCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "quarantine", Short: "List, show, release or delete files an import kept out"}
	cmd.AddCommand(newQuarantineListCmd(), newQuarantineShowCmd(), newQuarantineDecideCmd("release"), newQuarantineDecideCmd("delete"))
	return cmd
}

func newQuarantineListCmd() *cobra.Command {
	var state string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List quarantined files with why they were kept out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch state {
			case "all":
				state = ""
			case imaging.StateHeld, imaging.StateReleased, imaging.StateDeleted:
			default:
				return fmt.Errorf("--state %q: use held, released, deleted or all", state)
			}
			return withIntake(cmd, func(in *intakeCLI) error {
				who, logout, err := officerSession(cmd, in.Hospital)
				if err != nil {
					return err
				}
				defer logout()
				items, err := in.Quarantined(cmd.Context(), who, imaging.Filter{State: state})
				if err != nil {
					return err
				}
				if asJSON {
					return writeIndentedJSON(cmd.OutOrStdout(), items)
				}
				return writeItems(cmd.OutOrStdout(), items)
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", imaging.StateHeld, "held, released, deleted or all")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addSignInFlags(cmd)
	return cmd
}

// officerSession signs in the security officer named by --as. Without
// --as the command goes on as nobody, so that the intake refuses and the
// refusal is in the audit log.
func officerSession(cmd *cobra.Command, h *hospital.Hospital) (identity.Principal, func(), error) {
	if user, _ := cmd.Flags().GetString("as"); user == "" {
		return identity.Principal{Source: cliActor()}, func() {}, nil
	}
	return signIn(cmd, h)
}

func writeItems(w io.Writer, items []imaging.Item) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSEVERITY\tDETECTORS\tHELD\tPATIENT\tORIGIN\tFILE")
	for _, it := range items {
		dets := make([]string, len(it.Detectors))
		for i, d := range it.Detectors {
			dets[i] = string(d)
		}
		name := it.Name
		if it.Destroyed {
			name = "(destroyed with its key)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, it.State, it.Severity, strings.Join(dets, ","),
			it.HeldAt.Format(time.DateTime), orDash(it.Patient), orDash(it.Origin), name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d files\n", len(items))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newQuarantineShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID --as USER --totp CODE",
		Short: "As the security officer, show one quarantined file and every finding against it (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withIntake(cmd, func(in *intakeCLI) error {
				who, logout, err := officerSession(cmd, in.Hospital)
				if err != nil {
					return err
				}
				defer logout()
				it, err := in.QuarantineItem(cmd.Context(), who, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeIndentedJSON(cmd.OutOrStdout(), it)
				}
				return writeItem(cmd.OutOrStdout(), it)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addSignInFlags(cmd)
	return cmd
}

func writeItem(w io.Writer, it imaging.Item) error {
	name := it.Name
	if it.Destroyed {
		name = "(destroyed with its key: name, origin and findings can no longer be read)"
	}
	fmt.Fprintf(w, "%s: %s, %s\n  file     %s\n  origin   %s (import %s)\n  patient  %s\n  sha256   %s, %d bytes, content kept: %v\n  held     %s\n",
		it.ID, it.State, it.Severity, name, orDash(it.Origin), it.ImportID, orDash(it.Patient), it.SHA256, it.Size, it.Kept, it.HeldAt.Format(time.DateTime))
	if !it.DecidedAt.IsZero() {
		fmt.Fprintf(w, "  decided  %s by %s: %s\n", it.DecidedAt.Format(time.DateTime), it.DecidedBy, it.Decision)
	}
	if it.HandedTo != "" {
		fmt.Fprintf(w, "  copy     handed to %s (outside medsec until destroyed)\n", it.HandedTo)
	}
	for _, f := range it.Findings {
		fmt.Fprintf(w, "  finding  %s: %s: %s\n", f.Detector, f.Severity, f.Reason)
	}
	return nil
}

func newQuarantineDecideCmd(action string) *cobra.Command {
	var reason, out string
	cmd := &cobra.Command{
		Use:   action + " ID --reason TEXT --as USER --totp CODE",
		Short: "As the security officer, " + action + " a quarantined file (with a reason, audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withIntake(cmd, func(in *intakeCLI) error {
				h := in.Hospital
				who, logout, err := signIn(cmd, h)
				if err != nil {
					return err
				}
				defer logout()
				d := imaging.Decision{Who: who, Reason: reason}
				if action == "delete" {
					it, err := in.Delete(cmd.Context(), d, args[0])
					if err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "deleted %s: its key destroyed, content and record crypto-shredded; digest and decision kept\n", it.ID)
					}
					return err
				}
				return releaseQuarantined(cmd, in, d, args[0], out)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (written into the audit log)")
	cmd.MarkFlagRequired("reason")
	if action == "release" {
		cmd.Flags().StringVar(&out, "out", "", "also write the released file here (required for a file that is not a DICOM image)")
	}
	addSignInFlags(cmd)
	return cmd
}

func releaseQuarantined(cmd *cobra.Command, in *intakeCLI, d imaging.Decision, id, out string) error {
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		d.Out = f
	}
	rel, err := in.Release(cmd.Context(), d, id)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}
	if err != nil {
		return err
	}
	msg := "released " + rel.Item.ID
	if rel.Stored != nil {
		msg += fmt.Sprintf(": stored as %s for patient %s (preamble zeroed)", rel.Stored.ID, rel.Stored.Pseudonym)
	}
	if rel.Written > 0 {
		msg += fmt.Sprintf("; %d bytes written to %s: the copy is outside medsec, destroy it when the investigation ends", rel.Written, out)
	}
	fmt.Fprintln(cmd.OutOrStdout(), msg)
	return nil
}

// intakeCLI is the intake with the installation it runs on.
type intakeCLI struct {
	*imaging.Intake
	Hospital *hospital.Hospital
}

// withIntake opens the installation and its intake for one command.
func withIntake(cmd *cobra.Command, fn func(in *intakeCLI) error) error {
	h, err := openHospital(cmd)
	if err != nil {
		return err
	}
	defer h.Close(cmd.Context())
	in, err := openIntake(cmd, h, guard.Config{})
	if err != nil {
		return err
	}
	return fn(&intakeCLI{Intake: in, Hospital: h})
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newImagingCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "imaging", Short: "Read stored imaging through the one door"}
	cmd.AddCommand(newImagingStudyCmd())
	return cmd
}

func newImagingStudyCmd() *cobra.Command {
	var out, purpose string
	cmd := &cobra.Command{
		Use:   "study STUDY_UID --out DIR --as USER",
		Short: "Write a stored study's DICOM files to DIR, as a member of staff whom the policy allows (audited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			who, logout, err := signIn(cmd, h)
			if err != nil {
				return err
			}
			defer logout()
			ins, err := h.Door.ImagingStudy(cmd.Context(), records.Request{Who: who, Purpose: purpose}, args[0])
			if err != nil {
				return err
			}
			return writeStudy(cmd.OutOrStdout(), out, ins)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the files into (created; must not exist)")
	cmd.MarkFlagRequired("out")
	cmd.Flags().StringVar(&purpose, "purpose", "TREAT", "purpose of use (HL7 PurposeOfUse)")
	addSignInFlags(cmd)
	return cmd
}

func writeStudy(w io.Writer, dir string, ins []records.ImagingInstance) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for _, in := range ins {
		name := filepath.Join(dir, in.ID+".dcm")
		if err := os.WriteFile(name, in.Data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d bytes\n", name, in.Modality, in.SeriesUID, in.InstanceUID, in.Size)
	}
	_, err := fmt.Fprintf(w, "%d instances of patient %s\n", len(ins), ins[0].Pseudonym)
	return err
}
