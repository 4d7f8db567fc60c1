package identity

import (
	"context"
	"fmt"
	"time"
)

// PruneAfter is how long finished sign-in state is kept: sessions past
// their end (for the console's history), failure counts of names not
// locked and not failing, and ceremonies never finished.
const PruneAfter = 30 * 24 * time.Hour

// Prune deletes sign-in state that no longer matters: sessions that ended
// (expired or revoked) more than PruneAfter ago, failure counts idle for a
// day (so guessing at random user names cannot grow the table without
// bound), and expired ceremonies. Run it daily; the audit log keeps the
// history.
func (d *Directory) Prune(ctx context.Context) (int64, error) {
	now := d.now()
	old, day := now.Add(-PruneAfter).UnixNano(), now.Add(-lockoutsForget).UnixNano()
	var total int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM staff_sessions WHERE expires_at < ? OR revoked_at < ?`, []any{old, old}},
		{`DELETE FROM staff_login_guard WHERE window_start < ? AND locked_until < ?`, []any{day, day}},
		{`DELETE FROM staff_ceremonies WHERE expires_at < ?`, []any{now.UnixNano()}},
	} {
		res, err := d.db.Exec(ctx, q.sql, q.args...)
		if err != nil {
			return total, fmt.Errorf("prune sign-in state: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
