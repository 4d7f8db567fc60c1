package guard

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Exit codes of Main.
const (
	ExitClean     = 0 // nothing malicious found
	ExitMalicious = 1 // at least one file must not be imported
	ExitError     = 2 // bad usage, or the scan could not run
)

// Main runs "medsec scan PATH… [--json] [--clamd ADDR] [--deny FILE]"
// with args after the subcommand name. The CLI wires it; the logic stays
// here. A progress bar goes to stderr when stderr is a terminal.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "write the report as JSON")
	clamdAddr := fs.String("clamd", "", "also scan with ClamAV: unix:/path/clamd.ctl or tcp:host:3310")
	denyPath := fs.String("deny", "", "file of SHA-256 digests of known malicious files")
	progress := fs.Bool("progress", false, "show a progress bar even when stderr is not a terminal")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: medsec scan PATH... [--json] [--clamd ADDR] [--deny FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return ExitError
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitError
	}
	cfg, err := mainConfig(ctx, *clamdAddr, *denyPath)
	if err != nil {
		fmt.Fprintf(stderr, "medsec scan: %v\n", err)
		return ExitError
	}
	if *progress || isTerminal(stderr) {
		bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("scanning"),
			progressbar.OptionShowCount(), progressbar.OptionShowBytes(false), progressbar.OptionClearOnFinish())
		cfg.Progress = barProgress(bar)
		defer bar.Finish()
	}
	paths, missing := splitMissing(fs.Args())
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "medsec scan: %v\n", missing)
		return ExitError
	}
	rep, err := New(cfg).Scan(ctx, paths...)
	return finish(rep, errors.Join(missing, err), *asJSON, stdout, stderr)
}

// splitMissing keeps the paths that exist (a dangling link among them is
// the scan's finding); a path that does not exist at all is a mistyped
// name or unmounted media, an error rather than a clean scan.
func splitMissing(args []string) ([]string, error) {
	var paths []string
	var missing error
	for _, p := range args {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			missing = errors.Join(missing, fmt.Errorf("%s does not exist: check the path, or mount the media first", p))
			continue
		}
		paths = append(paths, p)
	}
	return paths, missing
}

func mainConfig(ctx context.Context, clamdAddr, denyPath string) (Config, error) {
	var cfg Config
	if denyPath != "" {
		d, err := LoadDenyList(denyPath)
		if err != nil {
			return cfg, err
		}
		cfg.DenyList = d
	}
	if clamdAddr != "" {
		c, err := NewClamd(clamdAddr)
		if err != nil {
			return cfg, err
		}
		if err := c.Ping(ctx); err != nil {
			return cfg, fmt.Errorf("clamd at %s does not answer: %w", c, err)
		}
		cfg.Clamd = c
	}
	return cfg, nil
}

// barProgress moves the bar; its total becomes known when the walk ends.
func barProgress(bar *progressbar.ProgressBar) func(Progress) {
	return func(p Progress) {
		if p.WalkDone && bar.GetMax64() != int64(p.Found) {
			bar.ChangeMax64(int64(p.Found))
		}
		bar.Set(p.Files)
	}
}

func finish(rep *Report, err error, asJSON bool, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintf(stderr, "medsec scan: %v\n", err)
	}
	if rep == nil {
		return ExitError
	}
	write := rep.WriteText
	if asJSON {
		write = rep.WriteJSON
	}
	if werr := write(stdout); werr != nil {
		fmt.Fprintf(stderr, "medsec scan: %v\n", werr)
		return ExitError
	}
	switch {
	case rep.Malicious():
		return ExitMalicious
	case err != nil:
		return ExitError
	}
	return ExitClean
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
