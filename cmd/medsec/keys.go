package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the key-encryption key"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Re-wrap every data key under a new key-encryption key (data is not re-encrypted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := openHospital(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			rep, err := h.RotateKEK(cmd.Context(), cliActor(), "cli")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated: new key-encryption key %s; %d data keys re-wrapped; retired %d old key(s)\n",
				rep.NewKeyID, rep.Rewrapped, len(rep.Retired))
			fmt.Fprintln(cmd.OutOrStdout(), "replace the offline copy of the key file with this one and destroy the old copies: they still open backups made before now, patients destroyed since included")
			return nil
		},
	})
	return cmd
}
