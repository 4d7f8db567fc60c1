package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/keys"
)

func newInitCmd() *cobra.Command {
	var profile, name, admin string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a data directory: configuration, key file, database, audit key, first administrator",
		Long: `init creates a new installation in --data (which must be new or empty):
a documented configuration (medsec.yaml), the key-encryption key file (mode 0600,
sealed with the passphrase from MEDSEC_PASSPHRASE or a prompt), the database
(embedded SQLite, or PostgreSQL with --db), the Ed25519 key that signs audit
checkpoints, and the first administrator (password from MEDSEC_ADMIN_PASSWORD,
or generated and printed once).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _ := cmd.Flags().GetString("data")
			dsn, _ := cmd.Flags().GetString("db")
			pass, err := passphrase(true)
			if err != nil {
				return err
			}
			res, err := hospital.Init(cmd.Context(), hospital.InitOptions{Dir: dir, Profile: profile, HospitalName: name,
				Passphrase: pass, AdminUsername: admin, AdminPassword: os.Getenv("MEDSEC_ADMIN_PASSWORD"), DSN: dsn, KDF: keys.DefaultKDF})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "initialized %s (%s profile)\n", res.Dir, profile)
			fmt.Fprintf(out, "  key file:        %s (back it up offline, with the passphrase kept apart)\n", res.KeyFile)
			fmt.Fprintf(out, "  audit verifier:  %s\n", res.VerifierKey)
			fmt.Fprintf(out, "  administrator:   %s\n", res.Admin.Username)
			if res.GeneratedPassword != "" {
				fmt.Fprintf(out, "  password:        %s   (shown once; change it at first login)\n", res.GeneratedPassword)
			}
			fmt.Fprintf(out, "  second factor:   add this to an authenticator app (shown once):\n")
			fmt.Fprintf(out, "                   %s\n", res.AdminTOTP.URL)
			fmt.Fprintf(out, "                   secret %s\n", res.AdminTOTP.Secret)
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "small", "large (all seven technologies) or small (one integrated server)")
	cmd.Flags().StringVar(&name, "name", "", "the hospital's name")
	cmd.Flags().StringVar(&admin, "admin", "admin", "user name of the first administrator")
	return cmd
}
