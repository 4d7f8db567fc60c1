package lifecycle

import (
	"testing"
	"time"
)

// FuzzParsePeriod: a retention period from a schedule file or the command
// line either is refused or is positive (every instant minus it is
// earlier, plus it later) and writes back (String, as YAML and JSON do)
// to text that reads as the same period.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"10y", "2y6mo", "30d", "2w", "36h", "1y2mo3w4d5h", " 5y ", "", "0d", "10x", "y", "1y1y",
		"123456y", "-1y", "99999h", "1w1d", "00001d", "1 y"} {
		f.Add(s)
	}
	instants := []time.Time{time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 23, 0, 0, 0, time.FixedZone("KST", 9*3600))}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		if p.Years < 0 || p.Months < 0 || p.Days < 0 || p.Hours < 0 || p.IsZero() {
			t.Fatalf("ParsePeriod(%q) = %+v, not positive", s, p)
		}
		for _, at := range instants {
			if !p.Before(at).Before(at) || !p.After(at).After(at) {
				t.Fatalf("period %s: %s before and %s after %s", p, p.Before(at), p.After(at), at)
			}
		}
		again, err := ParsePeriod(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePeriod(%q) = %+v, written %q, reads back as %+v, %v", s, p, p.String(), again, err)
		}
	})
}
