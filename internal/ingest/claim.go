package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/store"
)

// Message states in the ledger.
const (
	statePending  = "pending"
	stateStored   = "stored"
	stateRejected = "rejected"
)

// ledgerRow is what the ledger says about a message already seen.
type ledgerRow struct {
	state, device, owner, reason string
	claimed                      int64
	readings, refused            int
}

// claim takes the verified messages no other delivery holds: in memory
// first (one delivery at a time per process), then in the ledger, in one
// transaction for the bundle. Messages seen before get their Result here.
func (in *Ingester) claim(ctx context.Context, gateway string, work []*verified, results []Result) []*verified {
	work = in.takeInflight(work, results)
	if len(work) == 0 {
		return nil
	}
	var claimed []*verified
	decided := map[int]Result{}
	orphans := false
	err := in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		claimed, orphans = claimed[:0], false
		clear(decided)
		for _, v := range work {
			row, err := readLedger(ctx, tx, v.header.MessageID)
			if errors.Is(err, store.ErrNotFound) {
				if err := in.insertClaim(ctx, tx, gateway, v); err != nil {
					return err
				}
				claimed = append(claimed, v)
				continue
			}
			if err != nil {
				return err
			}
			r, orphan := in.seenBefore(v, row)
			decided[v.index], orphans = r, orphans || orphan
		}
		return nil
	})
	if err != nil {
		in.cfg.Logger.Error("claim device messages", "err", err)
		in.release(work)
		for _, v := range work {
			results[v.index] = retry(v, "the ledger is unavailable; send it again later")
		}
		return nil
	}
	for i, r := range decided {
		results[i] = r
	}
	in.releaseExcept(work, claimed)
	if orphans {
		in.settleSoon()
	}
	return claimed
}

func readLedger(ctx context.Context, tx *store.Tx, id phd.MessageID) (ledgerRow, error) {
	var r ledgerRow
	err := tx.QueryRow(ctx, `SELECT state, device, owner, reason, claimed_at, readings, refused FROM ingest_messages WHERE message_id = ?`, id[:]).
		Scan(&r.state, &r.device, &r.owner, &r.reason, &r.claimed, &r.readings, &r.refused)
	return r, err
}

func (in *Ingester) insertClaim(ctx context.Context, tx *store.Tx, gateway string, v *verified) error {
	h := v.header
	_, err := tx.Exec(ctx, `INSERT INTO ingest_messages (message_id, device, seq, gateway, sent_at, state, owner, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		h.MessageID[:], h.DeviceID, int64(h.Seq), gateway, h.Time.UnixNano(), statePending, in.owner, in.now().UnixNano())
	return err
}

// seenBefore answers a message the ledger knows. orphan reports a claim
// whose holder is gone, which recovery must settle before it can be
// answered.
func (in *Ingester) seenBefore(v *verified, row ledgerRow) (Result, bool) {
	r := Result{Index: v.index, MessageID: v.header.MessageID.String()}
	switch {
	case row.device != v.header.DeviceID:
		r.Status, r.Reason, r.Detail = Rejected, ReasonMessageIDReused, "another device sent a message with this id"
	case row.state == stateStored:
		r.Status, r.Readings, r.Refused = Duplicate, row.readings, row.refused
	case row.state == stateRejected:
		r.Status, r.Reason, r.Detail = Rejected, phd.Reason(row.reason), "refused when first delivered"
	default:
		return retry(v, "another delivery of this message is being stored"), in.orphaned(row)
	}
	return r, false
}

// orphaned reports whether a pending claim's holder is gone: this process
// holds no delivery of it (the caller checked), or another process has held
// it longer than the lease.
func (in *Ingester) orphaned(row ledgerRow) bool {
	if row.owner == in.owner {
		return true
	}
	return in.now().Sub(time.Unix(0, row.claimed)) > in.cfg.Lease
}

func retry(v *verified, detail string) Result {
	return Result{Index: v.index, MessageID: v.header.MessageID.String(), Status: Retry, Reason: ReasonInProgress, Detail: detail}
}

// takeInflight marks the messages as in flight in this process; those
// already in flight get a retry.
func (in *Ingester) takeInflight(work []*verified, results []Result) []*verified {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*verified
	for _, v := range work {
		if in.inflight[v.header.MessageID] {
			results[v.index] = retry(v, "another delivery of this message is being stored")
			continue
		}
		in.inflight[v.header.MessageID] = true
		out = append(out, v)
	}
	return out
}

func (in *Ingester) release(work []*verified) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, v := range work {
		delete(in.inflight, v.header.MessageID)
	}
}

func (in *Ingester) releaseExcept(work, keep []*verified) {
	held := make(map[phd.MessageID]bool, len(keep))
	for _, v := range keep {
		held[v.header.MessageID] = true
	}
	var drop []*verified
	for _, v := range work {
		if !held[v.header.MessageID] {
			drop = append(drop, v)
		}
	}
	in.release(drop)
}

func (in *Ingester) isInflight(id phd.MessageID) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.inflight[id]
}
