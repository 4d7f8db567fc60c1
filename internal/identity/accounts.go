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

// Profile is the descriptive part of an account an administrator edits.
type Profile struct {
	DisplayName, Department, Position string
	Wards                             []string
}

func checkProfile(p Profile) error {
	switch {
	case p.DisplayName == "" || len(p.DisplayName) > MaxNameLen || !printable(p.DisplayName):
		return invalidf("display name: 1-%d printable characters", MaxNameLen)
	case len(p.Department) > MaxFieldLen || !printable(p.Department):
		return invalidf("department: at most %d printable characters", MaxFieldLen)
	case len(p.Position) > MaxFieldLen || !printable(p.Position):
		return invalidf("position: at most %d printable characters", MaxFieldLen)
	case len(p.Wards) > MaxWards:
		return invalidf("wards: at most %d", MaxWards)
	}
	for _, w := range p.Wards {
		if w == "" || len(w) > MaxFieldLen || strings.ContainsAny(w, ", ") || !printable(w) {
			return invalidf("ward %q: 1-%d printable characters without commas or spaces", truncate(w, MaxFieldLen), MaxFieldLen)
		}
	}
	return nil
}

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd })
}

// isAdmin: IT administrators and medsec's own jobs administer accounts.
func (d *Directory) mayAdminister(by Principal) error {
	if !by.Verified() {
		return fmt.Errorf("%w: not authenticated", ErrForbidden)
	}
	if by.Role != RoleITAdmin && by.Role != RoleSystem {
		return fmt.Errorf("%w: only an IT administrator may change staff accounts", ErrForbidden)
	}
	return nil
}

// UpdateProfile replaces an account's display name, department, position
// and wards.
func (d *Directory) UpdateProfile(ctx context.Context, by Principal, staffID string, p Profile, reason string) error {
	if err := checkProfile(p); err != nil {
		return err
	}
	return d.change(ctx, by, staffID, "staff.update", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		_, err := tx.Exec(ctx, `UPDATE staff SET display_name = ?, department = ?, position = ?, wards = ?, updated_at = ? WHERE id = ?`,
			p.DisplayName, p.Department, p.Position, strings.Join(p.Wards, ","), d.now().UnixNano(), a.ID)
		return fmt.Sprintf("department %q, position %q, wards %q", p.Department, p.Position, strings.Join(p.Wards, ",")), err
	})
}

// Disable stops an account from signing in and revokes its sessions.
func (d *Directory) Disable(ctx context.Context, by Principal, staffID, reason string) error {
	if by.ID == staffID {
		return d.refuse(ctx, by, "staff.disable", staffResource(staffID), fmt.Errorf("%w: you cannot disable your own account", ErrForbidden))
	}
	return d.change(ctx, by, staffID, "staff.disable", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		now := d.now().UnixNano()
		if _, err := tx.Exec(ctx, `UPDATE staff SET disabled_at = ?, updated_at = ? WHERE id = ? AND disabled_at IS NULL`, now, now, a.ID); err != nil {
			return "", err
		}
		n, err := d.Sessions.revokeAll(ctx, tx, a.ID, "account disabled")
		return fmt.Sprintf("%d sessions revoked", n), err
	})
}

// Enable lets a disabled account sign in again.
func (d *Directory) Enable(ctx context.Context, by Principal, staffID, reason string) error {
	return d.change(ctx, by, staffID, "staff.enable", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		_, err := tx.Exec(ctx, `UPDATE staff SET disabled_at = NULL, updated_at = ? WHERE id = ?`, d.now().UnixNano(), a.ID)
		return "", err
	})
}

// SetValidity time-boxes an account (zero times: unbounded). An external
// maintainer's account must keep an end.
func (d *Directory) SetValidity(ctx context.Context, by Principal, staffID string, from, until time.Time, reason string) error {
	return d.change(ctx, by, staffID, "staff.validity", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		if err := checkValidity(a.Role, from, until, d.now()); err != nil {
			return "", err
		}
		_, err := tx.Exec(ctx, `UPDATE staff SET valid_from = ?, valid_until = ?, updated_at = ? WHERE id = ?`,
			nanosOrNil(from), nanosOrNil(until), d.now().UnixNano(), a.ID)
		return fmt.Sprintf("valid %s to %s", formatTime(from), formatTime(until)), err
	})
}

// ResetPassword sets a new password for someone who lost theirs, and
// revokes their sessions. The new password must pass the policy.
func (d *Directory) ResetPassword(ctx context.Context, by Principal, staffID, newPassword, reason string) error {
	return d.change(ctx, by, staffID, "staff.password", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		if err := d.setPassword(ctx, tx, a, newPassword); err != nil {
			return "", err
		}
		return "reset by an administrator; sessions revoked", nil
	})
}

// ChangePassword lets a signed-in user change their own password; the old
// one must be right (a wrong one counts as a failed sign-in). Every session
// of the user ends, this one included.
func (d *Directory) ChangePassword(ctx context.Context, who Principal, oldPassword, newPassword string) error {
	if !who.Verified() || who.Role == RoleSystem {
		return fmt.Errorf("change password: %w: sign in first", ErrForbidden)
	}
	if d.Audit == nil {
		return ErrNoAudit
	}
	a, err := d.accountByID(ctx, d.db, who.ID)
	if err != nil {
		return err
	}
	if len(oldPassword) > maxPasswordBytes || !VerifyPassword(oldPassword, a.hash) {
		return d.failSignIn(ctx, a.Username, &a, who.Source, "wrong current password at password change", ErrBadCredentials)
	}
	if subtleEqual(oldPassword, newPassword) {
		return fmt.Errorf("change password: %w: the new password must differ from the old one", ErrWeakPassword)
	}
	return d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := d.setPassword(ctx, tx, a, newPassword); err != nil {
			return err
		}
		return d.record(ctx, tx, who, "staff.password", staffResource(a.ID), audit.Success, "changed by the user; sessions revoked")
	})
}

func (d *Directory) setPassword(ctx context.Context, tx *store.Tx, a account, pw string) error {
	if err := CheckPassword(pw, a.Username, a.DisplayName); err != nil {
		return err
	}
	now := d.now().UnixNano()
	if _, err := tx.Exec(ctx, `UPDATE staff SET password_hash = ?, updated_at = ? WHERE id = ?`, HashPassword(pw, d.HashParams), now, a.ID); err != nil {
		return fmt.Errorf("store password of %s: %w", a.ID, err)
	}
	_, err := d.Sessions.revokeAll(ctx, tx, a.ID, "password changed")
	return err
}

// List returns every account, by user name.
func (d *Directory) List(ctx context.Context) ([]Staff, error) {
	accs, err := d.accounts(ctx)
	out := make([]Staff, len(accs))
	for i, a := range accs {
		out[i] = a.Staff
	}
	return out, err
}

func (d *Directory) accounts(ctx context.Context) ([]account, error) {
	now := d.now().UnixNano()
	rows, err := d.db.Query(ctx, `SELECT `+accountColumns+` FROM staff s ORDER BY s.username`, now, now)
	if err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	defer rows.Close()
	var out []account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list staff: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// change runs an audited administrative change of one account: fn makes
// it in tx and returns a summary for the audit reason.
func (d *Directory) change(ctx context.Context, by Principal, staffID, action, reason string,
	fn func(ctx context.Context, tx *store.Tx, a account) (string, error)) error {
	if err := d.mayAdminister(by); err != nil {
		return d.refuse(ctx, by, action, staffResource(staffID), err)
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	return d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		a, err := d.accountByID(ctx, tx, staffID)
		if err != nil {
			return err
		}
		summary, err := fn(ctx, tx, a)
		if err != nil {
			return fmt.Errorf("%s %s: %w", action, staffID, err)
		}
		return d.record(ctx, tx, by, action, staffResource(a.ID), audit.Success, joinReason(summary, reason))
	})
}

func checkReason(reason string) error {
	if strings.TrimSpace(reason) == "" || len(reason) > MaxReasonLen || !printable(reason) {
		return invalidf("reason: say why in 1-%d printable characters", MaxReasonLen)
	}
	return nil
}

// record appends an audit event inside tx, so the change and its record
// commit together.
func (d *Directory) record(ctx context.Context, tx *store.Tx, by Principal, action, resource, outcome, reason string) error {
	if d.Audit == nil {
		return ErrNoAudit
	}
	_, err := d.Audit.AppendTx(ctx, tx, d.event(by, action, resource, outcome, reason))
	return err
}

func (d *Directory) event(by Principal, action, resource, outcome, reason string) audit.Event {
	actor := by.ID
	if actor == "" {
		actor = "anonymous"
	}
	return audit.Event{Time: d.now(), Actor: actor, Role: by.Role, Action: action, Resource: resource,
		Outcome: outcome, Source: by.Source, Reason: truncate(reason, 2*MaxReasonLen)}
}

// refuse audits a refused change and returns err (or the audit failure).
func (d *Directory) refuse(ctx context.Context, by Principal, action, resource string, err error) error {
	if d.Audit == nil {
		return errors.Join(err, ErrNoAudit)
	}
	if _, aerr := d.Audit.Append(ctx, d.event(by, action, resource, audit.Denied, err.Error())); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

func staffResource(id string) string { return "Staff/" + id }

func joinReason(summary, reason string) string {
	parts := slices.DeleteFunc([]string{summary, reason}, func(s string) bool { return s == "" })
	return strings.Join(parts, "; ")
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "unbounded"
	}
	return t.UTC().Format(time.RFC3339)
}
