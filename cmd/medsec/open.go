package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/medsec/medsec/internal/hospital"
)

// passphrase reads the key passphrase from MEDSEC_PASSPHRASE or, on a
// terminal, a prompt (asked twice when confirm is set).
func passphrase(confirm bool) ([]byte, error) {
	if p := os.Getenv("MEDSEC_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errors.New("no passphrase: set MEDSEC_PASSPHRASE or run on a terminal to be asked")
	}
	fmt.Fprint(os.Stderr, "Key passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Again: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if string(p) != string(q) {
			return nil, errors.New("the two passphrases differ")
		}
	}
	return p, nil
}

// openHospital opens the installation named by the command's flags.
func openHospital(cmd *cobra.Command) (*hospital.Hospital, error) {
	dir, _ := cmd.Flags().GetString("data")
	dsn, _ := cmd.Flags().GetString("db")
	pass, err := passphrase(false)
	if err != nil {
		return nil, err
	}
	return hospital.Open(cmd.Context(), dir, hospital.OpenOptions{Passphrase: pass, DSN: dsn})
}

// cliActor names the operator of a command-line action in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}
