package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/store"
)

// The failure count is kept per user name, whether an account has that
// name or not, so a lockout behaves the same for names that do not exist
// and cannot be used to find accounts. The price is that anyone can lock a
// name for a while; the backoff keeps that short at first.

// guard is the sign-in failure state of one user name.
type guard struct {
	failures, lockouts       int
	windowStart, lockedUntil time.Time
	version                  int64
	found                    bool
}

// lockoutsForget: a name whose last lock ended this long ago starts again
// at the shortest lock.
const lockoutsForget = 24 * time.Hour

func guardKey(username string) string {
	k := strings.ToLower(strings.TrimSpace(username))
	if len(k) > MaxUsernameLen {
		k = k[:MaxUsernameLen]
	}
	return k
}

func (d *Directory) loadGuard(ctx context.Context, q store.Querier, key string) (guard, error) {
	var g guard
	var start, until int64
	err := q.QueryRow(ctx, `SELECT failures, window_start, locked_until, lockouts, version FROM staff_login_guard WHERE username = ?`, key).
		Scan(&g.failures, &start, &until, &g.lockouts, &g.version)
	if errors.Is(err, store.ErrNotFound) {
		return guard{}, nil
	}
	if err != nil {
		return guard{}, fmt.Errorf("read sign-in failures: %w", err)
	}
	g.windowStart, g.found = time.Unix(0, start), true
	if until != 0 {
		g.lockedUntil = time.Unix(0, until)
	}
	return g, nil
}

// afterFailure is g after one more failure at now; locked reports whether
// this failure started a lock.
func (p Policy) afterFailure(g guard, now time.Time) (guard, bool) {
	if !g.lockedUntil.IsZero() && now.Sub(g.lockedUntil) > lockoutsForget {
		g.lockouts = 0
	}
	if now.Sub(g.windowStart) >= p.FailureWindow {
		g.failures, g.windowStart = 0, now
	}
	g.failures++
	if g.failures < p.MaxFailures {
		return g, false
	}
	g.lockouts++
	g.lockedUntil = now.Add(p.lockFor(g.lockouts))
	g.failures, g.windowStart = 0, now
	return g, true
}

// lockFor is the n-th consecutive lock's length: LockBase doubled n-1
// times, at most LockCap.
func (p Policy) lockFor(n int) time.Duration {
	d := p.LockBase
	for i := 1; i < n && d < p.LockCap; i++ {
		d *= 2
	}
	return min(d, p.LockCap)
}

// errGuardRace means another sign-in changed the row first; the whole
// transaction runs again.
var errGuardRace = errors.New("sign-in failure count changed concurrently")

// registerFailure counts a failure in tx and returns the end of the lock
// it started (zero if none).
func (d *Directory) registerFailure(ctx context.Context, tx *store.Tx, key string, now time.Time) (time.Time, error) {
	g, err := d.loadGuard(ctx, tx, key)
	if err != nil {
		return time.Time{}, err
	}
	next, locked := d.Policy.afterFailure(g, now)
	if err := writeGuard(ctx, tx, key, g, next); err != nil {
		return time.Time{}, err
	}
	if locked {
		return next.lockedUntil, nil
	}
	return time.Time{}, nil
}

// writeGuard stores next if the row is still old (compare and swap on the
// version), so concurrent failures on PostgreSQL are all counted.
func writeGuard(ctx context.Context, tx *store.Tx, key string, old, next guard) error {
	if !old.found {
		_, err := tx.Exec(ctx, `INSERT INTO staff_login_guard (username, failures, window_start, locked_until, lockouts, version) VALUES (?, ?, ?, ?, ?, 1)`,
			key, next.failures, next.windowStart.UnixNano(), lockNanos(next.lockedUntil), next.lockouts)
		if errors.Is(err, store.ErrConflict) {
			return errGuardRace
		}
		return err
	}
	res, err := tx.Exec(ctx, `UPDATE staff_login_guard SET failures = ?, window_start = ?, locked_until = ?, lockouts = ?, version = version + 1 WHERE username = ? AND version = ?`,
		next.failures, next.windowStart.UnixNano(), lockNanos(next.lockedUntil), next.lockouts, key, old.version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errGuardRace
	}
	return nil
}

func lockNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// withGuard runs fn in a transaction, again when it lost a race on the
// failure count.
func (d *Directory) withGuard(ctx context.Context, fn func(ctx context.Context, tx *store.Tx) error) error {
	var err error
	for range 5 {
		err = d.db.ReadWriteTx(ctx, fn)
		if !errors.Is(err, errGuardRace) {
			return err
		}
	}
	return err
}

// clearGuard forgets a name's failures after a successful sign-in.
func clearGuard(ctx context.Context, tx *store.Tx, username string) error {
	_, err := tx.Exec(ctx, `DELETE FROM staff_login_guard WHERE username = ?`, guardKey(username))
	return err
}
