package tabular

import (
	"fmt"
	"strings"
)

// explain says in plain sentences what the search chose and why, for the
// dataset manifest and the person who reads it.
func explain(spec Spec, e *evaluator, st SearchStats, res *Result) []string {
	var out []string
	out = append(out, fmt.Sprintf("privacy model: %s over %d quasi-identifiers, at most %.1f%% (%d) of %d records suppressed",
		modelText(spec), len(e.qis), 100*spec.MaxSuppression, e.limit, e.n))
	out = append(out, fmt.Sprintf("searched a lattice of %d generalizations: %d evaluated (%d from cached classes, %d stopped early), %d settled by monotonicity without counting; %d passing nodes compared before the information-loss bound ended the search",
		st.Nodes, st.Evaluated, st.RolledUp, st.Stopped, st.Tagged, st.Compared))
	if !st.Monotone {
		out = append(out, "the model is not monotone when records are suppressed, so only k-anonymity and distinct l-diversity pruned the lattice and every node they let through was evaluated")
	}
	var chosen []string
	for _, l := range res.Levels {
		chosen = append(chosen, levelText(l))
	}
	out = append(out, "chose "+strings.Join(chosen, ", ")+fmt.Sprintf(": the least %s loss of all nodes that meet the model", spec.Metric))
	out = append(out, fmt.Sprintf("suppressed %d records (%.2f%%) in classes that do not meet the model", res.Suppressed, 100*float64(res.Suppressed)/float64(res.Records)))
	out = append(out, fmt.Sprintf("kept records reach %s; information loss: %.1f%% of the non-uniform entropy, precision %.3f, average class size %.1f",
		reachedText(res.Reached, spec), 100*res.Loss.EntropyShare, res.Loss.Precision, res.Loss.AvgClassSize))
	return out
}

func modelText(spec Spec) string {
	parts := []string{fmt.Sprintf("k-anonymity (k=%d)", spec.K)}
	if spec.L > 0 {
		parts = append(parts, fmt.Sprintf("%s l-diversity (l=%d) of %q", spec.LMode, spec.L, spec.Sensitive))
	}
	if spec.T > 0 {
		parts = append(parts, fmt.Sprintf("t-closeness (t=%g) of %q", spec.T, spec.Sensitive))
	}
	return strings.Join(parts, ", ")
}

func levelText(l QILevel) string {
	switch {
	case l.Level == 0:
		return l.Column + " kept as is"
	case l.Level == l.Height:
		return l.Column + " suppressed (*)"
	}
	return fmt.Sprintf("%s at level %d of %d (e.g. %q)", l.Column, l.Level, l.Height, l.Example)
}

func reachedText(r Reached, spec Spec) string {
	s := fmt.Sprintf("k=%d", r.K)
	if spec.Sensitive != "" {
		s += fmt.Sprintf(", distinct l=%d, entropy l=%.2f, t=%.3f", r.L, r.EntropyL, r.T)
	}
	return s
}
