package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
)

func newMetricsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Manage the long-lived tokens a Prometheus scraper uses to read /metrics",
	}
	token := &cobra.Command{Use: "token", Short: "Create, list and revoke metrics scrape tokens"}
	token.AddCommand(newScrapeCreateCmd(), newScrapeListCmd(), newScrapeRevokeCmd())
	cmd.AddCommand(token)
	return cmd
}

func newScrapeCreateCmd() *cobra.Command {
	var label string
	cmd := &cobra.Command{
		Use:   "create --label NAME",
		Short: "Create a scrape token (shown once) that reads /metrics and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return asStaff(cmd, func(h *hospital.Hospital, by identity.Principal) error {
				if err := console.PrepareScrapeTokens(cmd.Context(), h.DB); err != nil {
					return err
				}
				t, secret, err := console.CreateScrapeToken(cmd.Context(), h, by, label)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "scrape token %s for %s (shown once; keep it in the scraper's credentials file):\n%s\n", t.ID, t.Label, secret)
				fmt.Fprintln(w, "Prometheus: authorization: {type: Bearer, credentials_file: …}; revoke with medsec metrics token revoke", t.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "the scraper the token is for (e.g. prometheus-01)")
	addStaffFlags(cmd, "creates the token (the security officer or the IT administrator)")
	return cmd
}

func newScrapeListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the scrape tokens, active and revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return asStaff(cmd, func(h *hospital.Hospital, by identity.Principal) error {
				if err := console.PrepareScrapeTokens(cmd.Context(), h.DB); err != nil {
					return err
				}
				ts, err := console.ListScrapeTokens(cmd.Context(), h.DB)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), ts)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tLABEL\tCREATED BY\tCREATED\tREVOKED")
				for _, t := range ts {
					revoked := "-"
					if t.RevokedAt != nil {
						revoked = t.RevokedAt.UTC().Format("2006-01-02 15:04")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Label, t.CreatedBy, t.CreatedAt.UTC().Format("2006-01-02 15:04"), revoked)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addStaffFlags(cmd, "lists the tokens")
	return cmd
}

func newScrapeRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a scrape token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return asStaff(cmd, func(h *hospital.Hospital, by identity.Principal) error {
				if err := console.PrepareScrapeTokens(cmd.Context(), h.DB); err != nil {
					return err
				}
				if err := console.RevokeScrapeToken(cmd.Context(), h, by, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "scrape token %s revoked\n", args[0])
				return nil
			})
		},
	}
	addStaffFlags(cmd, "revokes the token")
	return cmd
}
