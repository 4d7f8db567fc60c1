package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// What the console keeps of a patient — call tickets, portal activations,
// the portal account and its sessions — goes when it is no longer needed
// (PIPA Art. 21): tickets after their day, activations once used or
// expired, sessions once ended, and all of it when the patient's record
// is destroyed. An erasure through the life-cycle engine reaches the
// console at once (Traces, a lifecycle.Eraser); a destruction the engine
// does not announce (a retention run, DestroyPatient) is found by the next
// Prune.

// KindConsole is the data map's name for what the console holds.
const KindConsole = "console"

// pruneJob is the principal the console's own deletions are audited as.
const pruneJob = "console"

// Pruned counts what a Prune deleted.
type Pruned struct {
	Tickets     int // call tickets of past days
	Activations int // used or expired activation codes
	Sessions    int // ended portal sessions
	Patients    int // patients whose record was destroyed: all of theirs
}

func (p Pruned) any() bool { return p != Pruned{} }

// Prune deletes call tickets of past days, used or expired activations,
// ended portal sessions, and everything the console keeps for patients
// whose record was destroyed. What it deletes is audited.
func (c *Console) Prune(ctx context.Context) (Pruned, error) {
	var p Pruned
	if err := c.pruneExpired(ctx, &p); err != nil {
		return p, fmt.Errorf("prune console tables: %w", err)
	}
	gone, err := c.destroyedPatients(ctx)
	if err != nil {
		return p, fmt.Errorf("prune console tables: %w", err)
	}
	for _, pseudonym := range gone {
		if _, err := c.erasePatient(ctx, pseudonym, "the patient's record was destroyed"); err != nil {
			return p, err
		}
		p.Patients++
	}
	return p, nil
}

func (c *Console) pruneExpired(ctx context.Context, p *Pruned) error {
	now := c.now()
	return c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		steps := []struct {
			n     *int
			query string
			args  []any
		}{
			{&p.Tickets, `DELETE FROM console_tickets WHERE day < ?`, []any{c.today()}},
			{&p.Activations, `DELETE FROM console_activations WHERE used_at IS NOT NULL OR expires_at <= ?`, []any{now.UnixNano()}},
			{&p.Sessions, `DELETE FROM console_patient_sessions WHERE revoked_at IS NOT NULL OR expires_at <= ? OR last_seen <= ?`,
				[]any{now.UnixNano(), now.Add(-identity.DefaultIdleTimeout).UnixNano()}},
		}
		for _, s := range steps {
			res, err := tx.Exec(ctx, s.query, s.args...)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			*s.n = int(n)
		}
		if !p.any() {
			return nil
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, systemEvent("console.prune", "", "Console/tables", fmt.Sprintf(
			"deleted %d call tickets of past days, %d used or expired activation codes, %d ended portal sessions", p.Tickets, p.Activations, p.Sessions)))
		return err
	})
}

func systemEvent(action, patient, resource, reason string) audit.Event {
	p := identity.System(pruneJob)
	return audit.Event{Actor: p.ID, Role: p.Role, Action: action, Purpose: "HOPERAT", Patient: patient, Resource: resource,
		Outcome: audit.Success, Source: p.Source, Reason: reason}
}

// destroyedPatients are the pseudonyms the console holds something of
// whose record is destroyed (or gone).
func (c *Console) destroyedPatients(ctx context.Context) ([]string, error) {
	held, err := c.heldPseudonyms(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pseudonym := range held {
		gone, err := c.recordGone(ctx, pseudonym)
		if err != nil {
			return nil, err
		}
		if gone {
			out = append(out, pseudonym)
		}
	}
	return out, nil
}

// heldPseudonyms lists the patients of the console's tables, once each.
func (c *Console) heldPseudonyms(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	rows, err := c.h.DB.Query(ctx, `SELECT pseudonym FROM console_patient_accounts UNION SELECT pseudonym FROM console_activations`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		add(p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	tickets, err := c.allTickets(ctx)
	for _, t := range tickets {
		add(t.Pseudonym)
	}
	return out, err
}

func (c *Console) allTickets(ctx context.Context) ([]Ticket, error) {
	rows, err := c.h.DB.Query(ctx, `SELECT `+ticketColumns+` FROM console_tickets`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Ticket
	for rows.Next() {
		t, err := c.scanTicket(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// recordGone reports whether the patient's record is destroyed or unknown.
// Facts hand out nothing identifying, so this is not an audited access.
func (c *Console) recordGone(ctx context.Context, pseudonym string) (bool, error) {
	id, err := c.h.Door.ResolvePseudonym(ctx, pseudonym)
	if errors.Is(err, records.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	f, err := c.h.Door.Facts(ctx, id)
	if errors.Is(err, records.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return f.Destroyed, nil
}

// erased counts what erasePatient deleted.
type erased struct{ tickets, activations, accounts, sessions int }

func (e erased) String() string {
	return fmt.Sprintf("%d call tickets, %d activation codes, %d portal accounts with %d sessions", e.tickets, e.activations, e.accounts, e.sessions)
}

// erasePatient deletes everything the console keeps of the patient, in one
// audited transaction.
func (c *Console) erasePatient(ctx context.Context, pseudonym, why string) (erased, error) {
	var e erased
	err := c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		steps := []struct {
			n     *int
			query string
			arg   any
		}{
			{&e.tickets, `DELETE FROM console_tickets WHERE patient_link = ?`, c.patientLink(pseudonym)},
			{&e.activations, `DELETE FROM console_activations WHERE pseudonym = ?`, pseudonym},
			{&e.sessions, `DELETE FROM console_patient_sessions WHERE account_id IN (SELECT id FROM console_patient_accounts WHERE pseudonym = ?)`, pseudonym},
			{&e.accounts, `DELETE FROM console_patient_accounts WHERE pseudonym = ?`, pseudonym},
		}
		for _, s := range steps {
			res, err := tx.Exec(ctx, s.query, s.arg)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			*s.n = int(n)
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, systemEvent("console.erase", pseudonym, "Patient/"+pseudonym, why+": deleted "+e.String()))
		return err
	})
	if err != nil {
		return e, fmt.Errorf("erase console data of %s: %w", pseudonym, err)
	}
	return e, nil
}

// PruneEvery prunes now (medsec serve's start-up), then just after every
// local midnight, so call tickets do not outlive their day; until ctx
// ends. Failures are logged.
func (c *Console) PruneEvery(ctx context.Context, log *slog.Logger) {
	for {
		if _, err := c.Prune(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("prune console tables", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(untilAfterMidnight(time.Now())):
		}
	}
}

// untilAfterMidnight is how long from now until a minute past the next
// local midnight.
func untilAfterMidnight(now time.Time) time.Duration {
	y, m, d := now.Date()
	return time.Date(y, m, d+1, 0, 1, 0, 0, now.Location()).Sub(now)
}

// Traces is the console as a place of the data map that acts on an
// erasure (lifecycle.Eraser): call tickets, portal activations, the portal
// account and its sessions.
type Traces struct{ c *Console }

// Traces returns the console's erasure hook; connect it with
// lifecycle.Engine.AddSource.
func (c *Console) Traces() *Traces { return &Traces{c: c} }

// Kind is KindConsole.
func (t *Traces) Kind() string { return KindConsole }

// Locations lists what the console keeps of the patient now.
func (t *Traces) Locations(ctx context.Context, s lifecycle.Subject) ([]lifecycle.Location, error) {
	c := t.c
	var out []lifecycle.Location
	counts := []struct {
		place, state, query string
		arg                 any
	}{
		{"waiting-room call tickets", "masked name and pseudonym sealed; deleted after the day", `SELECT COUNT(*) FROM console_tickets WHERE patient_link = ?`, c.patientLink(s.Pseudonym)},
		{"patient portal account", "user name as a keyed digest, portal token sealed", `SELECT COUNT(*) FROM console_patient_accounts WHERE pseudonym = ?`, s.Pseudonym},
		{"portal activation codes", "code as a keyed digest, portal token sealed; deleted once used or expired", `SELECT COUNT(*) FROM console_activations WHERE pseudonym = ?`, s.Pseudonym},
	}
	for _, q := range counts {
		var n int
		if err := c.h.DB.QueryRow(ctx, q.query, q.arg).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", q.place, err)
		}
		if n > 0 {
			out = append(out, lifecycle.Location{Kind: KindConsole, Place: q.place, Holder: "hospital", Count: n,
				Stage: lifecycle.StageProvision, State: q.state})
		}
	}
	return out, nil
}

// Erase deletes everything the console keeps of the patient. Nothing of it
// is held outside the hospital, so it returns no locations.
func (t *Traces) Erase(ctx context.Context, s lifecycle.Subject, basis string) ([]lifecycle.Location, error) {
	_, err := t.c.erasePatient(ctx, s.Pseudonym, "erasure ("+strings.TrimSpace(truncate(basis, 200))+")")
	return nil, err
}
