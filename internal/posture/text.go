package posture

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for a terminal: the controls, then Table 4,
// then the safeguards.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "medsec posture of %s (%s profile), %s\n", r.Hospital, r.Profile, r.Checked.UTC().Format(time.RFC3339))
	blocks := []func(tw io.Writer){
		func(tw io.Writer) {
			fmt.Fprintln(tw, "CONTROL\tSTATE\tWHY")
			for _, f := range r.Controls {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", f.ID, mark(f.State), f.Reason)
			}
		},
		func(tw io.Writer) {
			fmt.Fprintln(tw, "LOCATION (TABLE 4)\tREQUIREMENT\tSTATE\tCONTROLS")
			for _, q := range r.Requirements {
				fmt.Fprintf(tw, "%2d %s\t%s\t%s\t%s\n", q.Location, q.Place, q.Requirement, mark(q.State), strings.Join(q.Controls, ", "))
			}
		},
		func(tw io.Writer) {
			fmt.Fprintln(tw, "SAFEGUARD\tSTATE\tAREA")
			for _, s := range r.Safeguards {
				fmt.Fprintf(tw, "%s %s\t%s\t%s\n", s.Standard, s.Ref, mark(s.State), s.Title)
			}
		},
	}
	for _, block := range blocks {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		block(tw)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "\nevery required control passes")
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d required %s FAIL: see WHY above\n", r.Failed, plural(r.Failed, "control", "controls"))
	return err
}

func mark(s State) string {
	switch s {
	case Pass:
		return "pass"
	case Fail:
		return "FAIL"
	}
	return "off"
}
