package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// Grant scopes (what a scope grant lets its holder do) and the systems a
// grant can cover.
const (
	ScopePatientData = "patient-data" // see patient data in the systems named
	ScopeSystem      = "system"       // work on the systems, no patient data
)

// Systems a grant can cover; "*" is all of them.
var Systems = []string{"emr", "ocs", "pacs", "audit", "*"}

// GrantState is where a grant is in its life.
type GrantState string

// Grant states. A pending or approved grant whose end has passed is
// expired (computed, not stored: see Grant.StateAt).
const (
	GrantPending  GrantState = "pending"
	GrantApproved GrantState = "approved"
	GrantRejected GrantState = "rejected"
	GrantRevoked  GrantState = "revoked"
	GrantExpired  GrantState = "expired"
)

// Grant kinds.
const (
	KindRole  = "role"
	KindScope = "scope"
)

// GrantRequest asks for a grant.
type GrantRequest struct {
	StaffID string
	// What is a role (the holder acts in it during the grant: covering for
	// a colleague, an external maintainer's visit) or a scope
	// (ScopePatientData, ScopeSystem).
	What string
	// Systems the grant covers (Systems); scope grants only.
	Systems []string
	// Patient limits a patient-data grant to one patient ("" for all).
	Patient string
	// From and Until bound the grant. Scope grants must end; a role grant
	// without Until is a lasting change of role.
	From, Until time.Time
	Reason      string
}

// Grant is a grant of a role or scope to a member of staff.
type Grant struct {
	ID         string     `json:"id"`
	StaffID    string     `json:"staff_id"`
	Kind       string     `json:"kind"`
	What       string     `json:"what"`
	Systems    []string   `json:"systems,omitempty"`
	Patient    string     `json:"patient,omitempty"`
	From       time.Time  `json:"from"`
	Until      time.Time  `json:"until,omitzero"`
	Reason     string     `json:"reason"`
	Privileged bool       `json:"privileged"`
	State      GrantState `json:"state"`
	// RequestedBy and DecidedBy are staff ids; a privileged grant is
	// approved by someone other than its requester and its holder.
	RequestedBy    string    `json:"requested_by"`
	RequestedAt    time.Time `json:"requested_at"`
	DecidedBy      string    `json:"decided_by,omitempty"`
	DecidedAt      time.Time `json:"decided_at,omitzero"`
	DecisionReason string    `json:"decision_reason,omitempty"`
	// LastUsed is when the grant last served an access (TouchGrant).
	LastUsed time.Time `json:"last_used,omitzero"`
}

// StateAt is the grant's state at now: a pending or approved grant past
// its end is expired.
func (g Grant) StateAt(now time.Time) GrantState {
	if (g.State == GrantPending || g.State == GrantApproved) && !g.Until.IsZero() && !now.Before(g.Until) {
		return GrantExpired
	}
	return g.State
}

// ActiveAt reports whether the grant is approved and in force at now.
func (g Grant) ActiveAt(now time.Time) bool {
	return g.StateAt(now) == GrantApproved && !now.Before(g.From)
}

// mayRequestGrants: IT administrators, security officers and medsec's jobs.
func mayRequestGrants(by Principal) error {
	if !by.Verified() {
		return fmt.Errorf("%w: not authenticated", ErrForbidden)
	}
	if by.Role != RoleITAdmin && by.Role != RoleSecurityOfficer && by.Role != RoleSystem {
		return fmt.Errorf("%w: only an IT administrator or a security officer may grant or revoke", ErrForbidden)
	}
	return nil
}

// mayApprove: a second administrator — a person, not a job; neither the
// requester nor the holder.
func mayApprove(by Principal, g Grant) error {
	if !by.Verified() || (by.Role != RoleITAdmin && by.Role != RoleSecurityOfficer) {
		return fmt.Errorf("%w: only an IT administrator or a security officer may approve", ErrForbidden)
	}
	if by.ID == g.RequestedBy || by.ID == g.StaffID {
		return fmt.Errorf("%w: %s cannot approve a grant they requested or hold", ErrSelfApproval, by.ID)
	}
	return nil
}

func (d *Directory) checkGrantRequest(r GrantRequest, holder account, now time.Time) (Grant, error) {
	g := Grant{ID: "gr_" + randomID(), StaffID: r.StaffID, What: r.What, Systems: r.Systems, Patient: r.Patient,
		From: r.From, Until: r.Until, Reason: r.Reason, RequestedAt: now}
	if g.From.IsZero() {
		g.From = now
	}
	if err := checkReason(r.Reason); err != nil {
		return Grant{}, err
	}
	switch {
	case validRole(r.What):
		g.Kind = KindRole
		if len(r.Systems) > 0 || r.Patient != "" {
			return Grant{}, invalidf("a role grant covers no systems or patient of its own")
		}
	case r.What == ScopePatientData || r.What == ScopeSystem:
		g.Kind = KindScope
		if err := checkScope(r); err != nil {
			return Grant{}, err
		}
	default:
		return Grant{}, invalidf("grant %q: name a role (%s) or a scope (%s, %s)", truncate(r.What, MaxFieldLen),
			strings.Join(Roles, ", "), ScopePatientData, ScopeSystem)
	}
	if err := d.checkGrantPeriod(g, holder, now); err != nil {
		return Grant{}, err
	}
	g.Privileged = privilegedGrant(g, holder.Role)
	return g, nil
}

func checkScope(r GrantRequest) error {
	if len(r.Systems) == 0 || len(r.Systems) > len(Systems) {
		return invalidf("a scope grant names the systems it covers (%s)", strings.Join(Systems, ", "))
	}
	for _, s := range r.Systems {
		if !slices.Contains(Systems, s) {
			return invalidf("unknown system %q (one of %s)", truncate(s, MaxFieldLen), strings.Join(Systems, ", "))
		}
	}
	if r.Patient != "" && (r.What != ScopePatientData || len(r.Patient) > MaxFieldLen || !printable(r.Patient)) {
		return invalidf("a patient can only be named, by an id of at most %d characters, in a %s grant", MaxFieldLen, ScopePatientData)
	}
	return nil
}

func (d *Directory) checkGrantPeriod(g Grant, holder account, now time.Time) error {
	needsEnd := g.Kind == KindScope || holder.Role == RoleExternalMaintainer
	switch {
	case g.Until.IsZero() && needsEnd:
		return invalidf("this grant must end: give its end")
	case g.Until.IsZero():
		return nil
	case !g.Until.After(g.From) || !g.Until.After(now):
		return invalidf("the grant ends before it starts, or has already ended")
	case g.Until.Sub(g.From) > d.Policy.MaxGrant:
		return invalidf("a grant runs at most %s", d.Policy.MaxGrant)
	case !holder.ValidUntil.IsZero() && g.Until.After(holder.ValidUntil):
		return invalidf("the grant ends after the holder's account does (%s)", holder.ValidUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// privilegedGrant: a privileged role, or patient data for the roles that
// otherwise never see it (IT administrators, external maintainers).
func privilegedGrant(g Grant, holderRole string) bool {
	if g.Kind == KindRole {
		return slices.Contains(PrivilegedRoles, g.What)
	}
	return g.What == ScopePatientData && (holderRole == RoleITAdmin || holderRole == RoleExternalMaintainer)
}

// RequestGrant records a grant. A privileged one stays pending until a
// second administrator approves it; any other is approved at once.
func (d *Directory) RequestGrant(ctx context.Context, by Principal, r GrantRequest) (Grant, error) {
	if err := mayRequestGrants(by); err != nil {
		return Grant{}, d.refuse(ctx, by, "grant.request", staffResource(r.StaffID), err)
	}
	now := d.now()
	var g Grant
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		holder, err := d.accountByID(ctx, tx, r.StaffID)
		if err != nil {
			return err
		}
		if g, err = d.checkGrantRequest(r, holder, now); err != nil {
			return err
		}
		g.RequestedBy, g.State = by.ID, GrantPending
		if !g.Privileged {
			g.State, g.DecidedBy, g.DecidedAt, g.DecisionReason = GrantApproved, by.ID, now, "not privileged: no second approval needed"
		}
		if err := insertGrant(ctx, tx, g); err != nil {
			return err
		}
		return d.record(ctx, tx, by, "grant.request", grantResource(g.ID), audit.Success, describeGrant(g))
	})
	return g, err
}

// ApproveGrant approves a pending grant. The approver must be a second
// administrator: never the requester, never the holder (ErrSelfApproval).
func (d *Directory) ApproveGrant(ctx context.Context, by Principal, id, reason string) (Grant, error) {
	return d.decide(ctx, by, id, "grant.approve", GrantApproved, reason, mayApprove, GrantPending)
}

// RejectGrant refuses a pending grant.
func (d *Directory) RejectGrant(ctx context.Context, by Principal, id, reason string) (Grant, error) {
	return d.decide(ctx, by, id, "grant.reject", GrantRejected, reason, mayApprove, GrantPending)
}

// RevokeGrant ends a pending or approved grant at once.
func (d *Directory) RevokeGrant(ctx context.Context, by Principal, id, reason string) (Grant, error) {
	may := func(by Principal, _ Grant) error { return mayRequestGrants(by) }
	return d.decide(ctx, by, id, "grant.revoke", GrantRevoked, reason, may, GrantPending, GrantApproved)
}

func (d *Directory) decide(ctx context.Context, by Principal, id, action string, to GrantState, reason string,
	may func(Principal, Grant) error, from ...GrantState) (Grant, error) {
	if err := checkReason(reason); err != nil {
		return Grant{}, err
	}
	now := d.now()
	var g Grant
	var refused error
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if g, err = grantByID(ctx, tx, id); err != nil {
			return err
		}
		if refused = may(by, g); refused != nil {
			return refused
		}
		if state := g.StateAt(now); !slices.Contains(from, state) {
			return fmt.Errorf("%s %s: %w: it is %s", action, id, ErrGrantState, state)
		}
		g.State, g.DecidedBy, g.DecidedAt, g.DecisionReason = to, by.ID, now, reason
		if err := updateGrantState(ctx, tx, g, from); err != nil {
			return err
		}
		return d.record(ctx, tx, by, action, grantResource(g.ID), audit.Success, joinReason(describeGrant(g), reason))
	})
	if refused != nil {
		return Grant{}, d.refuse(ctx, by, action, grantResource(id), refused)
	}
	return g, err
}

// Grants returns every grant of a member of staff, newest first.
func (d *Directory) Grants(ctx context.Context, staffID string) ([]Grant, error) {
	return d.queryGrants(ctx, `WHERE staff_id = ? ORDER BY requested_at DESC`, staffID)
}

// PendingGrants returns the grants waiting for a second administrator
// (including those that expired while waiting; see Grant.StateAt).
func (d *Directory) PendingGrants(ctx context.Context) ([]Grant, error) {
	return d.queryGrants(ctx, `WHERE state = ? ORDER BY requested_at`, string(GrantPending))
}

// ActiveGrants returns the scope grants of a member of staff in force at
// now: what the access policy weighs (patient data for an IT administrator
// or external maintainer, work on a system). Role grants are not here; they
// set the principal's role.
func (d *Directory) ActiveGrants(ctx context.Context, staffID string, now time.Time) ([]Grant, error) {
	n := now.UnixNano()
	return d.queryGrants(ctx, `WHERE staff_id = ? AND kind = ? AND state = ? AND starts_at <= ? AND ends_at > ? ORDER BY ends_at DESC`,
		staffID, KindScope, string(GrantApproved), n, n)
}

// TouchGrant records that a grant served an access at now, for the
// access review's "unused for 90 days".
func (d *Directory) TouchGrant(ctx context.Context, grantID string, now time.Time) error {
	res, err := d.db.Exec(ctx, `UPDATE staff_grants SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		now.UnixNano(), grantID, now.UnixNano())
	if err != nil {
		return fmt.Errorf("record use of grant %s: %w", grantID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := grantByID(ctx, d.db, grantID); err != nil {
			return err
		}
	}
	return nil
}

const grantColumns = `id, staff_id, kind, what, systems, patient, starts_at, ends_at, reason, privileged, state,
	requested_by, requested_at, decided_by, decided_at, decision_reason, last_used_at`

func insertGrant(ctx context.Context, tx *store.Tx, g Grant) error {
	_, err := tx.Exec(ctx, `INSERT INTO staff_grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.StaffID, g.Kind, g.What, strings.Join(g.Systems, ","), g.Patient, g.From.UnixNano(), nanosOrNil(g.Until),
		g.Reason, boolInt(g.Privileged), string(g.State), g.RequestedBy, g.RequestedAt.UnixNano(), g.DecidedBy,
		nanosOrNil(g.DecidedAt), g.DecisionReason, nil)
	if err != nil {
		return fmt.Errorf("store grant: %w", err)
	}
	return nil
}

// updateGrantState moves g to its new state if it is still in one of from
// (a concurrent decision loses).
func updateGrantState(ctx context.Context, tx *store.Tx, g Grant, from []GrantState) error {
	res, err := tx.Exec(ctx, `UPDATE staff_grants SET state = ?, decided_by = ?, decided_at = ?, decision_reason = ? WHERE id = ? AND state IN (?, ?)`,
		string(g.State), g.DecidedBy, g.DecidedAt.UnixNano(), g.DecisionReason, g.ID, string(from[0]), string(from[len(from)-1]))
	if err != nil {
		return fmt.Errorf("store grant %s: %w", g.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("grant %s: %w: it changed meanwhile", g.ID, ErrGrantState)
	}
	return nil
}

func grantByID(ctx context.Context, q store.Querier, id string) (Grant, error) {
	g, err := scanGrant(q.QueryRow(ctx, `SELECT `+grantColumns+` FROM staff_grants WHERE id = ?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return Grant{}, fmt.Errorf("%w: %s", ErrUnknownGrant, truncate(id, MaxFieldLen))
	}
	return g, err
}

func (d *Directory) queryGrants(ctx context.Context, where string, args ...any) ([]Grant, error) {
	rows, err := d.db.Query(ctx, `SELECT `+grantColumns+` FROM staff_grants `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("read grants: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func scanGrant(row scanner) (Grant, error) {
	var (
		g                    Grant
		systems, state       string
		from, requested      int64
		privileged           int
		until, decided, used *int64
	)
	err := row.Scan(&g.ID, &g.StaffID, &g.Kind, &g.What, &systems, &g.Patient, &from, &until, &g.Reason, &privileged, &state,
		&g.RequestedBy, &requested, &g.DecidedBy, &decided, &g.DecisionReason, &used)
	if err != nil {
		return Grant{}, err
	}
	g.Systems, g.State, g.Privileged = splitList(systems), GrantState(state), privileged != 0
	g.From, g.Until, g.RequestedAt = time.Unix(0, from), fromNanos(until), time.Unix(0, requested)
	g.DecidedAt, g.LastUsed = fromNanos(decided), fromNanos(used)
	return g, nil
}

func grantResource(id string) string { return "Grant/" + id }

// describeGrant says what a grant is, for the audit log. A patient is not
// named: the audit log holds patients only as pseudonyms, which the door
// computes; the grant id leads to the patient for those allowed to know.
func describeGrant(g Grant) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s for %s", g.Kind, g.What, g.StaffID)
	if len(g.Systems) > 0 {
		fmt.Fprintf(&b, " on %s", strings.Join(g.Systems, ","))
	}
	if g.Patient != "" {
		b.WriteString(" for one patient")
	}
	fmt.Fprintf(&b, " from %s until %s", formatTime(g.From), formatTime(g.Until))
	if g.Privileged {
		b.WriteString(" (privileged: two-person approval)")
	}
	fmt.Fprintf(&b, ": %s", g.Reason)
	return b.String()
}
