package identity

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// ReviewOptions tune an access review.
type ReviewOptions struct {
	// Now is the review's instant (zero: the directory's clock).
	Now time.Time
	// UnusedAfter: a right not used for this long is listed (default 90
	// days). ExpiringWithin: grants and accounts ending this soon are
	// listed (default 7 days).
	UnusedAfter, ExpiringWithin time.Duration
}

// AccessReview is the periodic review of who holds what (ISO 27001 A.5.18,
// HIPAA §164.308(a)(4)): a value that renders as JSON or text.
type AccessReview struct {
	Generated          time.Time     `json:"generated"`
	UnusedAfterDays    int           `json:"unused_after_days"`
	ExpiringWithinDays int           `json:"expiring_within_days"`
	Holders            []Holding     `json:"holders"`
	Unused             []UnusedRight `json:"unused"`
	Expiring           []Expiring    `json:"expiring"`
	Pending            []Grant       `json:"pending"`
}

// Holding is one account and the grants in force for it.
type Holding struct {
	Staff      Staff   `json:"staff"`
	ActingRole string  `json:"acting_role,omitempty"`
	Grants     []Grant `json:"grants,omitempty"`
}

// UnusedRight is a role or grant not used within the review's period.
type UnusedRight struct {
	StaffID  string `json:"staff_id"`
	Username string `json:"username"`
	// Right is "role <role>" or "grant <id> <what>".
	Right   string `json:"right"`
	GrantID string `json:"grant_id,omitempty"`
	// Since is when the right was given; LastUsed is zero if never used.
	Since    time.Time `json:"since"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// Expiring is a grant or account that ends soon.
type Expiring struct {
	StaffID  string    `json:"staff_id"`
	Username string    `json:"username"`
	What     string    `json:"what"`
	GrantID  string    `json:"grant_id,omitempty"`
	Ends     time.Time `json:"ends"`
}

// AccessReview builds the access-review report.
func (d *Directory) AccessReview(ctx context.Context, opt ReviewOptions) (*AccessReview, error) {
	if opt.Now.IsZero() {
		opt.Now = d.now()
	}
	if opt.UnusedAfter == 0 {
		opt.UnusedAfter = 90 * 24 * time.Hour
	}
	if opt.ExpiringWithin == 0 {
		opt.ExpiringWithin = 7 * 24 * time.Hour
	}
	accs, err := d.accounts(ctx)
	if err != nil {
		return nil, err
	}
	grants, err := d.queryGrants(ctx, `ORDER BY staff_id, requested_at`)
	if err != nil {
		return nil, err
	}
	r := &AccessReview{Generated: opt.Now, UnusedAfterDays: int(opt.UnusedAfter / (24 * time.Hour)),
		ExpiringWithinDays: int(opt.ExpiringWithin / (24 * time.Hour)), Unused: []UnusedRight{}, Expiring: []Expiring{}, Pending: []Grant{}}
	byStaff := map[string][]Grant{}
	for _, g := range grants {
		byStaff[g.StaffID] = append(byStaff[g.StaffID], g)
	}
	for _, a := range accs {
		r.add(a, byStaff[a.ID], opt)
	}
	return r, nil
}

func (r *AccessReview) add(a account, grants []Grant, opt ReviewOptions) {
	now, cutoff, soon := opt.Now, opt.Now.Add(-opt.UnusedAfter), opt.Now.Add(opt.ExpiringWithin)
	h := Holding{Staff: a.Staff, ActingRole: a.actingRole}
	usable := a.activeAt(now) == nil // disabled and ended accounts hold no usable right
	if usable && a.Created.Before(cutoff) && a.LastLogin.Before(cutoff) {
		r.Unused = append(r.Unused, UnusedRight{StaffID: a.ID, Username: a.Username, Right: "role " + a.Role, Since: a.Created, LastUsed: a.LastLogin})
	}
	if usable && !a.ValidUntil.IsZero() && !a.ValidUntil.After(soon) {
		r.Expiring = append(r.Expiring, Expiring{StaffID: a.ID, Username: a.Username, What: "account", Ends: a.ValidUntil})
	}
	for _, g := range grants {
		if g.StateAt(now) == GrantPending {
			r.Pending = append(r.Pending, g)
		}
		if !g.ActiveAt(now) || !usable {
			continue
		}
		h.Grants = append(h.Grants, g)
		r.addGrant(a, g, cutoff, now, soon)
	}
	r.Holders = append(r.Holders, h)
}

func (r *AccessReview) addGrant(a account, g Grant, cutoff, now, soon time.Time) {
	used := g.LastUsed
	if g.Kind == KindRole && a.LastLogin.After(g.From) {
		used = a.LastLogin // a role grant is used by signing in under it
	}
	right := "grant " + g.ID + " " + g.What
	if g.From.Before(cutoff) && used.Before(cutoff) {
		r.Unused = append(r.Unused, UnusedRight{StaffID: a.ID, Username: a.Username, Right: right, GrantID: g.ID, Since: g.From, LastUsed: used})
	}
	if !g.Until.IsZero() && g.Until.After(now) && !g.Until.After(soon) {
		r.Expiring = append(r.Expiring, Expiring{StaffID: a.ID, Username: a.Username, What: right, GrantID: g.ID, Ends: g.Until})
	}
}

// WriteText renders the review for a person.
func (r *AccessReview) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Access review, %s\n\n", r.Generated.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "Who holds what (%d accounts)\nUSER\tROLE\tDEPARTMENT\tSTATUS\tLAST SIGN-IN\tGRANTS IN FORCE\n", len(r.Holders))
	for _, h := range r.Holders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Staff.Username, roleText(h), dash(h.Staff.Department),
			statusText(h.Staff), dateText(h.Staff.LastLogin), grantsText(h.Grants))
	}
	fmt.Fprintf(tw, "\nRights unused for %d days (%d)\nUSER\tRIGHT\tSINCE\tLAST USED\n", r.UnusedAfterDays, len(r.Unused))
	for _, u := range r.Unused {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.Right, dateText(u.Since), dateText(u.LastUsed))
	}
	fmt.Fprintf(tw, "\nEnding within %d days (%d)\nUSER\tWHAT\tENDS\n", r.ExpiringWithinDays, len(r.Expiring))
	for _, e := range r.Expiring {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Username, e.What, e.Ends.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "\nWaiting for a second administrator (%d)\nGRANT\tFOR\tWHAT\tREQUESTED BY\tREASON\n", len(r.Pending))
	for _, g := range r.Pending {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.ID, g.StaffID, g.What, g.RequestedBy, g.Reason)
	}
	return tw.Flush()
}

func roleText(h Holding) string {
	if h.ActingRole != "" {
		return h.ActingRole + " (acting; own: " + h.Staff.Role + ")"
	}
	return h.Staff.Role
}

func statusText(s Staff) string {
	var parts []string
	if s.Disabled {
		parts = append(parts, "disabled")
	}
	if !s.ValidUntil.IsZero() {
		parts = append(parts, "until "+s.ValidUntil.UTC().Format("2006-01-02"))
	}
	if s.TOTP {
		parts = append(parts, "2FA")
	}
	if len(parts) == 0 {
		return "active"
	}
	return strings.Join(parts, ", ")
}

func grantsText(gs []Grant) string {
	parts := make([]string, 0, len(gs))
	for _, g := range gs {
		s := g.What
		if len(g.Systems) > 0 {
			s += "@" + strings.Join(g.Systems, "+")
		}
		if !g.Until.IsZero() {
			s += " until " + g.Until.UTC().Format("2006-01-02")
		}
		parts = append(parts, s)
	}
	return dash(strings.Join(parts, "; "))
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
