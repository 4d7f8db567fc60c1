package ingest

import (
	"context"
	"fmt"
	"time"
)

// Prune forgets the ledger rows of messages too old to be accepted again
// (sent before MaxMessageAge plus the clock skew, with an hour to spare):
// a redelivery of one is refused as timestamp-too-old before the ledger is
// read, so its row no longer guards against anything.
func (in *Ingester) Prune(ctx context.Context) (int64, error) {
	cutoff := in.now().Add(-(in.cfg.Limits.MaxMessageAge + in.cfg.Limits.FutureSkew + time.Hour))
	res, err := in.cfg.DB.Exec(ctx, `DELETE FROM ingest_messages WHERE state <> ? AND sent_at < ?`, statePending, cutoff.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune the message ledger: %w", err)
	}
	return res.RowsAffected()
}

// Maintain runs until ctx ends: every interval it settles abandoned claims
// (which keeps the recovery watermark near the head of the audit log, so a
// recovery after a crash reads little) and prunes the message and refusal ledgers.
func (in *Ingester) Maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := in.Recover(ctx, false); err != nil && ctx.Err() == nil {
			in.cfg.Logger.Error("settle device message claims", "err", err)
		}
		if _, err := in.Prune(ctx); err != nil && ctx.Err() == nil {
			in.cfg.Logger.Error("prune the message ledger", "err", err)
		}
		if err := in.pruneRefusals(ctx); err != nil && ctx.Err() == nil {
			in.cfg.Logger.Error("prune the refusal ledger", "err", err)
		}
	}
}
