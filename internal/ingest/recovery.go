package ingest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Recovery reports what a Recover run settled.
type Recovery struct {
	Scanned  int // audit events read
	Stored   int // claims whose readings the audit log shows stored
	Released int // abandoned claims released for redelivery
	Waiting  int // claims still held by a live delivery
}

// Recover settles claims left by a delivery that died between the door's
// commit and the ledger update (a crash, a lost connection to the
// database). The door writes the readings and their audit event in one
// transaction, and the event's source names the message: so a claim whose
// event exists is stored, and an abandoned claim without one never stored
// anything and is released. all treats every claim as abandoned (start-up
// of a single server); otherwise a claim counts as abandoned when this
// process holds no delivery of it or its holder's lease has passed.
//
// It reads the audit log from the watermark of the previous run, which is
// safe to advance: an event not yet written when the scan starts gets a
// later index.
func (in *Ingester) Recover(ctx context.Context, all bool) (Recovery, error) {
	in.recoverMu.Lock()
	defer in.recoverMu.Unlock()
	var rep Recovery
	from, err := in.watermark(ctx)
	if err != nil {
		return rep, err
	}
	found, next, err := in.scanStored(ctx, from, &rep)
	if err != nil {
		return rep, err
	}
	pending, err := in.pendingClaims(ctx)
	if err != nil {
		return rep, err
	}
	err = in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		rep.Stored, rep.Released, rep.Waiting = 0, 0, 0
		for _, c := range pending {
			if err := in.settleClaim(ctx, tx, c, found, all, &rep); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE ingest_recovery SET audit_scanned = ? WHERE id = 1`, int64(next))
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("recover device message claims: %w", err)
	}
	return rep, nil
}

func (in *Ingester) watermark(ctx context.Context) (uint64, error) {
	var w int64
	if err := in.cfg.DB.QueryRow(ctx, `SELECT audit_scanned FROM ingest_recovery WHERE id = 1`).Scan(&w); err != nil {
		return 0, fmt.Errorf("read recovery watermark: %w", err)
	}
	return uint64(w), nil
}

// scanStored reads the door's ingestion events from index from on and
// returns the message ids they stored (with their records, exact for a
// message stored alone, an even share for one stored in a group) and the
// index after the last event read.
func (in *Ingester) scanStored(ctx context.Context, from uint64, rep *Recovery) (map[phd.MessageID]int, uint64, error) {
	found := map[phd.MessageID]int{}
	next := from
	err := audit.Scan(ctx, in.cfg.DB, in.cfg.Audit.Chain(), from, 0, func(e audit.Event) error {
		rep.Scanned++
		next = e.Index + 1
		if e.Actor != "system:ingest" || e.Action != records.ClassObservation+"."+records.ActionWrite || e.Outcome != audit.Success {
			return nil
		}
		ids := messagesOfSource(e.Source)
		for _, id := range ids {
			found[id] = recordCount(e.Resource) / len(ids) // per message when one alone; a share in a group
		}
		return nil
	})
	if err != nil {
		return nil, from, fmt.Errorf("scan the audit log for stored messages: %w", err)
	}
	return found, next, nil
}

// recordCount reads N from the door's resource "Patient/P/observation[N]".
func recordCount(resource string) int {
	_, rest, ok := strings.Cut(resource, "[")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	return n
}

type claimRow struct {
	id      phd.MessageID
	owner   string
	claimed int64
}

func (in *Ingester) pendingClaims(ctx context.Context) ([]claimRow, error) {
	rows, err := in.cfg.DB.Query(ctx, `SELECT message_id, owner, claimed_at FROM ingest_messages WHERE state = ?`, statePending)
	if err != nil {
		return nil, fmt.Errorf("read pending claims: %w", err)
	}
	defer rows.Close()
	var out []claimRow
	for rows.Next() {
		var c claimRow
		var id []byte
		if err := rows.Scan(&id, &c.owner, &c.claimed); err != nil {
			return nil, err
		}
		copy(c.id[:], id)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (in *Ingester) settleClaim(ctx context.Context, tx *store.Tx, c claimRow, found map[phd.MessageID]int, all bool, rep *Recovery) error {
	if n, ok := found[c.id]; ok {
		rep.Stored++
		_, err := tx.Exec(ctx, `UPDATE ingest_messages SET state = ?, done_at = ?, readings = ? WHERE message_id = ? AND state = ?`,
			stateStored, in.now().UnixNano(), max(n-1, 0), c.id[:], statePending)
		return err
	}
	abandoned := all || (c.owner == in.owner && !in.isInflight(c.id)) || in.now().Sub(time.Unix(0, c.claimed)) > in.cfg.Lease
	if !abandoned {
		rep.Waiting++
		return nil
	}
	rep.Released++
	_, err := tx.Exec(ctx, `DELETE FROM ingest_messages WHERE message_id = ? AND state = ? AND owner = ? AND claimed_at = ?`,
		c.id[:], statePending, c.owner, c.claimed)
	return err
}

// settleSoon runs a recovery in the background (a delivery found an
// abandoned claim); the gateway's next attempt finds it settled.
func (in *Ingester) settleSoon() {
	if !in.recoverMu.TryLock() {
		return // one is running
	}
	in.recoverMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if rep, err := in.Recover(ctx, false); err != nil {
			in.cfg.Logger.Error("settle abandoned device message claims", "err", err)
		} else if rep.Stored+rep.Released > 0 {
			in.cfg.Logger.Info("settled abandoned device message claims", "stored", rep.Stored, "released", rep.Released)
		}
	}()
}
