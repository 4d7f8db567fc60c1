package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/deid/tabular"
)

func newRiskCmd() *cobra.Command {
	var qis, population string
	var threshold float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "risk IN.csv --qi a,b,c",
		Short: "Measure the re-identification risk of a table (CSV or Parquet) over its quasi-identifiers",
		Long: `Prosecutor risk (the attacker knows the person is in the table), journalist risk
(linking to a population table, --population), marketer risk (re-identifying as many
as possible), the share of records above --threshold, and, when the highest risk is
above it, how much each quasi-identifier drives it. Nothing is changed or written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := measureRisk(args[0], splitFlag(qis), population, threshold)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			printRisk(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.Flags().StringVar(&qis, "qi", "", "the quasi-identifier columns, comma-separated")
	cmd.Flags().StringVar(&population, "population", "", "a population table (same quasi-identifier columns) for journalist risk")
	cmd.Flags().Float64Var(&threshold, "threshold", 0.2, "the risk above which a record counts as at risk")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("qi")
	return cmd
}

func measureRisk(in string, qis []string, population string, threshold float64) (tabular.Risk, error) {
	if !(threshold > 0 && threshold <= 1) {
		return tabular.Risk{}, fmt.Errorf("--threshold %v: want a share above 0, at most 1", threshold)
	}
	t, err := dataset.ReadTableFile(in)
	if err != nil {
		return tabular.Risk{}, fmt.Errorf("%s: %w", in, err)
	}
	opt := tabular.RiskOptions{Threshold: threshold}
	if population != "" {
		if opt.Population, err = dataset.ReadTableFile(population); err != nil {
			return tabular.Risk{}, fmt.Errorf("%s: %w", population, err)
		}
	}
	return tabular.MeasureRisk(t, qis, opt)
}

func printRisk(w io.Writer, r tabular.Risk) {
	fmt.Fprintf(w, "%d records in %d equivalence classes\n", r.Records, r.Classes)
	fmt.Fprintf(w, "prosecutor: max %.3f, average %.3f\n", r.ProsecutorMax, r.ProsecutorAvg)
	fmt.Fprintf(w, "journalist: max %.3f, average %.3f\n", r.JournalistMax, r.JournalistAvg)
	fmt.Fprintf(w, "marketer:   %.3f\n", r.Marketer)
	fmt.Fprintf(w, "at risk:    %.1f%% of records above %.2f\n", 100*r.AtRisk, r.Threshold)
	for i, d := range r.Drivers {
		if i == 0 {
			fmt.Fprintln(w, "drivers (risk without each quasi-identifier, most effective first):")
		}
		fmt.Fprintf(w, "  %-20s max %.3f, average %.3f, at risk %.1f%%\n", d.QI, d.ProsecutorMax, d.ProsecutorAvg, 100*d.AtRisk)
	}
}
