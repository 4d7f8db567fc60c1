// Package sqlite is medsec's embedded storage backend: one SQLite file in the
// data directory (WAL mode, full synchronous commits, secure delete), driven
// by the pure-Go modernc.org/sqlite so the binary needs no C toolchain. It is
// the default for a small hospital and for `medsec demo`.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	"github.com/medsec/medsec/internal/store"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Open opens (creating when create is true) the database file at path and
// returns it ready for migrations. A missing file with create false, an
// unreadable file or a file that is not a SQLite database gives an error
// wrapping store.ErrUnavailable.
func Open(ctx context.Context, path string, create bool) (*store.DB, error) {
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open database %s: %w: %w", path, store.ErrUnavailable, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open database %s: %w: %w", path, store.ErrUnavailable, err)
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w: %w", path, store.ErrUnavailable, err)
	}
	write, err := sql.Open("sqlite", dsn(path, "immediate", false))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w: %w", path, store.ErrUnavailable, err)
	}
	// One writer: SQLite serializes writers anyway, and one connection keeps
	// them from spinning on SQLITE_BUSY inside this process.
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dsn(path, "deferred", true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open database %s: %w: %w", path, store.ErrUnavailable, err)
	}
	read.SetMaxOpenConns(max(2, runtime.GOMAXPROCS(0)))
	if err := checkFile(ctx, write, path); err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	return store.New(write, read, backend{}), nil
}

// createPrivate creates the database file with mode 0600 when it does not
// exist: SQLite gives its WAL and shared-memory files the database file's
// mode, and nothing in them is for other users of the machine, sealed or
// not.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func dsn(path, txlock string, readOnly bool) string {
	q := url.Values{}
	q.Set("_txlock", txlock)
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "secure_delete(ON)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: a commit is on disk before it returns, which the audit
		// log's "durable before the data leaves" promise relies on.
		q.Add("_pragma", "synchronous(FULL)")
	}
	return "file:" + path + "?" + q.Encode()
}

// checkFile makes a damaged or foreign file fail at open with a clear error.
func checkFile(ctx context.Context, db *sql.DB, path string) error {
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return fmt.Errorf("open database %s: %w: %w", path, store.ErrUnavailable, err)
	}
	if res != "ok" {
		return fmt.Errorf("open database %s: %w: the file is damaged (%s); restore it from a backup", path, store.ErrUnavailable, res)
	}
	return nil
}

type backend struct{}

func (backend) Dialect() store.Dialect { return store.SQLite }

func (backend) Close() error { return nil }

func (backend) Compact(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// LockChain needs nothing: every write transaction begins IMMEDIATE and so
// already holds SQLite's single write lock.
func (backend) LockChain(context.Context, *sql.Tx, string) error { return nil }

func (backend) Classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT:
		if se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		}
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", store.ErrBusy, err)
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: the database file is damaged: %w", store.ErrUnavailable, err)
	}
	return err
}
