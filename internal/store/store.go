// Package store is medsec's storage layer: one SQL database, reached through
// a small set of methods that hide the differences between the embedded
// SQLite backend (a small hospital, `medsec demo`) and PostgreSQL (a large
// hospital with several stateless replicas).
//
// It serves locations 3 and 6 of the paper (the healthcare data server and
// the main server): everything medsec keeps lives here, and nothing
// identifying is written in plaintext — the packages above this one seal
// patient fields with per-patient keys before they reach a Querier.
//
// Each component (keys, audit, records, …) owns its tables and ships its own
// versioned migrations; Migrate applies them in order and records them in
// schema_migrations. Backends live in store/sqlite and store/postgres and run
// one conformance suite (store/storetest).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means the row asked for does not exist. Callers turn it
	// into their own not-found error (unknown patient, unknown device).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique key already exists. The caller reports a
	// duplicate to the user; retrying will not help.
	ErrConflict = errors.New("already exists")
	// ErrBusy means the database stayed locked or the transaction lost a
	// serialization race after every retry. The caller may retry later
	// (HTTP 503 with Retry-After).
	ErrBusy = errors.New("database busy")
	// ErrUnavailable means the database could not be reached or opened. The
	// operator must fix the DSN, the file or the server; nothing was written.
	ErrUnavailable = errors.New("database unavailable")
)

// Dialect names the SQL dialect of a backend.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Backend is what a database engine supplies to DB. It is implemented by
// store/sqlite and store/postgres.
type Backend interface {
	Dialect() Dialect
	// Classify maps an engine error onto ErrConflict or ErrBusy (wrapped),
	// or returns it unchanged.
	Classify(err error) error
	// LockChain serializes writers of one named append-only chain (the
	// audit log) inside tx until it commits.
	LockChain(ctx context.Context, tx *sql.Tx, chain string) error
	// Compact makes deleted data leave the files now (SQLite: checkpoint
	// and truncate the WAL; secure_delete already zeroes freed pages).
	Compact(ctx context.Context, db *sql.DB) error
	// Close releases the engine's resources.
	Close() error
}

// DB is an open medsec database.
type DB struct {
	write   *sql.DB // single-writer pool for SQLite; the shared pool elsewhere
	read    *sql.DB // read-only pool (the same pool for PostgreSQL)
	backend Backend
	retries int

	// Prepared statements of the read pool by query text. Parsing SQL
	// costs more than running a point query, so reads are prepared once.
	readStmts stmtCache
}

// New assembles a DB from a backend's pools. Backends call it from Open.
func New(write, read *sql.DB, b Backend) *DB {
	return &DB{write: write, read: read, backend: b, retries: 8}
}

type stmtCache struct {
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

// stmtCacheLimit bounds the cache; queries beyond it run unprepared.
const stmtCacheLimit = 1024

// get returns the prepared statement of q on pool, preparing it once.
func (c *stmtCache) get(ctx context.Context, pool *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.RLock()
	st, ok := c.m[q]
	c.mu.RUnlock()
	if ok {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	if len(c.m) >= stmtCacheLimit {
		return nil, nil
	}
	st, err := pool.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// Dialect reports the backend's SQL dialect.
func (db *DB) Dialect() Dialect { return db.backend.Dialect() }

// Close closes the pools and the backend.
func (db *DB) Close() error {
	db.readStmts.close()
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return errors.Join(err, db.backend.Close())
}

// Compact makes deleted data leave the database files now, after a
// crypto-shredding or a retention run.
func (db *DB) Compact(ctx context.Context) error {
	return db.classify(db.backend.Compact(ctx, db.write))
}

// Querier runs statements written with '?' placeholders on either backend.
// Both *DB (each statement on its own) and *Tx implement it.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *Row
	Dialect() Dialect
}

// Row is a single-row result whose Scan reports ErrNotFound for no rows.
type Row struct {
	row      *sql.Row
	err      error // the query did not run
	classify func(error) error
}

// Scan copies the row's columns into dest.
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	err := r.row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return r.classify(err)
}

// Exec runs a statement outside any explicit transaction.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.write.ExecContext(ctx, db.rebind(query), args...)
	return res, db.classify(err)
}

// Query reads through the read pool.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := db.rebind(query)
	st, err := db.readStmts.get(ctx, db.read, q)
	if err != nil {
		return nil, db.classify(err)
	}
	var rows *sql.Rows
	if st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = db.read.QueryContext(ctx, q, args...)
	}
	return rows, db.classify(err)
}

// QueryRow reads one row through the read pool.
//
// On SQLite a read that has started runs to its end whatever ctx does
// (one whose ctx is already done is refused): database/sql and the driver
// each watch a cancellable context with a goroutine per query, which cost
// more than a one-row read itself, and such a read takes microseconds and,
// in WAL mode, waits for no writer, so a cancel has nothing to cut short.
// PostgreSQL reads keep ctx: there a cancel stops work on the server.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *Row {
	if db.Dialect() == SQLite {
		if err := ctx.Err(); err != nil {
			return &Row{err: err, classify: db.classify}
		}
		ctx = context.WithoutCancel(ctx)
	}
	q := db.rebind(query)
	st, err := db.readStmts.get(ctx, db.read, q)
	if err != nil || st == nil {
		return &Row{row: db.read.QueryRowContext(ctx, q, args...), classify: db.classify}
	}
	return &Row{row: st.QueryRowContext(ctx, args...), classify: db.classify}
}

// Tx is a read-write transaction.
type Tx struct {
	tx *sql.Tx
	db *DB
}

// Exec runs a statement in the transaction. (Statements in a transaction
// are not taken from the prepared-statement cache: preparing one would need
// a second connection of SQLite's single-writer pool, which the
// transaction holds.)
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(ctx, t.db.rebind(query), args...)
	return res, t.db.classify(err)
}

// Query reads in the transaction.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := t.tx.QueryContext(ctx, t.db.rebind(query), args...)
	return rows, t.db.classify(err)
}

// QueryRow reads one row in the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *Row {
	return &Row{row: t.tx.QueryRowContext(ctx, t.db.rebind(query), args...), classify: t.db.classify}
}

// Prepare makes a statement for repeated use within the transaction only
// (on its own connection); it is closed when the transaction ends.
func (t *Tx) Prepare(ctx context.Context, query string) (*TxStmt, error) {
	st, err := t.tx.PrepareContext(ctx, t.db.rebind(query))
	if err != nil {
		return nil, t.db.classify(err)
	}
	return &TxStmt{st: st, classify: t.db.classify}, nil
}

// TxStmt is a statement prepared in a transaction.
type TxStmt struct {
	st       *sql.Stmt
	classify func(error) error
}

// Exec runs the statement.
func (s *TxStmt) Exec(ctx context.Context, args ...any) (sql.Result, error) {
	res, err := s.st.ExecContext(ctx, args...)
	return res, s.classify(err)
}

// Dialect reports the backend's SQL dialect.
func (t *Tx) Dialect() Dialect { return t.db.Dialect() }

// LockChain serializes the writers of an append-only chain until commit.
func (t *Tx) LockChain(ctx context.Context, chain string) error {
	return t.db.classify(t.db.backend.LockChain(ctx, t.tx, chain))
}

// ReadWriteTx runs fn in a transaction and commits it. When the database is
// busy or the transaction loses a serialization race, fn runs again (so fn
// must not have effects outside the transaction). Any error from fn rolls
// the transaction back and is returned as it is.
func (db *DB) ReadWriteTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	var err error
	for attempt := 0; attempt <= db.retries; attempt++ {
		if attempt > 0 {
			if werr := backoff(ctx, attempt); werr != nil {
				return werr
			}
		}
		err = db.runTx(ctx, fn)
		if !errors.Is(err, ErrBusy) {
			return err
		}
	}
	return err
}

func (db *DB) runTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", db.classify(err))
	}
	if err := fn(ctx, &Tx{tx: sqlTx, db: db}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", db.classify(err))
	}
	return nil
}

func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(attempt*attempt) * 5 * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (db *DB) classify(err error) error {
	if err == nil {
		return nil
	}
	return db.backend.Classify(err)
}

// rebind turns '?' placeholders into PostgreSQL's $n. Queries in medsec never
// carry a literal '?' (values always travel as arguments).
func (db *DB) rebind(q string) string {
	if db.Dialect() != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Placeholders returns "(?,?,…),(?,?,…)…" for a multi-row insert of rows
// rows with cols columns each.
func Placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}
