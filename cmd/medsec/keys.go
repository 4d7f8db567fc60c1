package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
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
			rep, err := h.Keys.Rotate(cmd.Context())
			outcome, reason := audit.Success, fmt.Sprintf("new KEK %s, %d data keys re-wrapped, retired %v", rep.NewKeyID, rep.Rewrapped, rep.Retired)
			if err != nil {
				outcome, reason = audit.Failed, err.Error()
			}
			if _, aerr := h.Audit.Append(cmd.Context(), audit.Event{Actor: cliActor(), Role: identity.RoleSystem, Action: "keys.rotate",
				Outcome: outcome, Source: "cli", Reason: reason}); aerr != nil && err == nil {
				err = aerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated: new key-encryption key %s; %d data keys re-wrapped; retired %d old key(s)\n",
				rep.NewKeyID, rep.Rewrapped, len(rep.Retired))
			return nil
		},
	})
	return cmd
}
