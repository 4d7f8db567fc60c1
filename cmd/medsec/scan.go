package main

import (
	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/guard"
)

func newScanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scan PATH... [--json] [--clamd ADDR] [--deny FILE]",
		Short: "Scan import media (files, directories, a mounted CD/DVD/USB, .iso, zip) for malicious code; exit 1 when any file must be kept out",
		Long: `scan checks every file with medsec's own detectors: DICOM Part 10 structure,
executable or script headers hidden in the DICOM preamble (CVE-2019-11687),
executables, scripts, autorun.inf, shortcuts and macro documents on media,
content that does not match its extension, archive and decompression bombs,
and a SHA-256 deny list; with --clamd also ClamAV (unix:/run/clamav/clamd.ctl
or tcp:host:3310). It prints one line per finding and a summary (--json for
the whole report). Exit status: 0 clean, 1 something malicious, 2 error.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" {
					return cmd.Help()
				}
			}
			if code := guard.Main(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != guard.ExitClean {
				return exitError{code: code}
			}
			return nil
		},
	}
}
