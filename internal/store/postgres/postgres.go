// Package postgres is medsec's storage backend for a large hospital:
// PostgreSQL through jackc/pgx, shared by several stateless `medsec serve`
// replicas. It runs the same schema and the same conformance suite as the
// embedded SQLite backend.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/medsec/medsec/internal/store"
)

// Open connects to the PostgreSQL server named by dsn (a postgres:// URL or
// key=value string) and checks that it answers. An unreachable server gives
// an error wrapping store.ErrUnavailable that never repeats the DSN's
// password.
func Open(ctx context.Context, dsn string) (*store.DB, error) {
	cfg, err := pgconnConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w: bad DSN: %v", store.ErrUnavailable, redactErr(err))
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s:%d/%s: %w: %v", cfg.Host, cfg.Port, cfg.Database, store.ErrUnavailable, redactErr(err))
	}
	return store.New(db, db, backend{}), nil
}

// redactErr keeps only the error's own text; pgx never puts the password in
// it, but the parse error of a malformed DSN may echo the DSN, so cut that.
func redactErr(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return "the connection string could not be parsed"
	}
	return err.Error()
}

type backend struct{}

func (backend) Dialect() store.Dialect { return store.Postgres }

func (backend) Close() error { return nil }

// Compact does nothing: PostgreSQL reclaims dead rows with (auto)vacuum,
// which the database administrator schedules.
func (backend) Compact(context.Context, *sql.DB) error { return nil }

// LockChain takes a transaction-scoped advisory lock named after the chain,
// so replicas append to one chain one at a time.
func (backend) LockChain(ctx context.Context, tx *sql.Tx, chain string) error {
	h := fnv.New64a()
	h.Write([]byte("medsec-chain:" + chain))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}

func (backend) Classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	switch pe.Code {
	case "23505":
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case "40001", "40P01", "55P03":
		return fmt.Errorf("%w: %w", store.ErrBusy, err)
	}
	return err
}
