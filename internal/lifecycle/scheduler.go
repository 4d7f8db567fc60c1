package lifecycle

import (
	"context"
	"time"
)

// Every runs job now and then every interval until ctx ends, handing each
// error to report (a job that fails is tried again at the next tick, so a
// database that was briefly unavailable does not stop retention). It is
// how `medsec serve` runs retention and the overdue check.
func Every(ctx context.Context, interval time.Duration, job func(context.Context) error, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := job(ctx); err != nil && ctx.Err() == nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
