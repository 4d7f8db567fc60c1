// Package storetest is the conformance suite every storage backend passes,
// and the helper that runs any component's tests against every backend:
// SQLite always, PostgreSQL when MEDSEC_TEST_POSTGRES holds a DSN (CI sets
// it). Each test gets a fresh database: a new SQLite file, or a new
// PostgreSQL schema dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/postgres"
	"github.com/medsec/medsec/internal/store/sqlite"
)

// PostgresEnv names the environment variable holding the test server's DSN.
const PostgresEnv = "MEDSEC_TEST_POSTGRES"

var warnOnce sync.Once

// Backend opens fresh, empty databases of one kind for tests.
type Backend struct {
	Name string
	// Open returns a new empty database, closed when t ends.
	Open func(t testing.TB) *store.DB
}

// Backends lists the backends this run can test. Without
// MEDSEC_TEST_POSTGRES only SQLite is listed, and a loud note says so once.
func Backends(t testing.TB) []Backend {
	bs := []Backend{{Name: "sqlite", Open: OpenSQLite}}
	if PostgresDSN() != "" {
		bs = append(bs, Backend{Name: "postgres", Open: OpenPostgres})
	} else {
		warnOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "\n*** %s is not set: PostgreSQL conformance tests are SKIPPED (CI sets it) ***\n\n", PostgresEnv)
		})
	}
	return bs
}

// Each runs fn as a subtest against a fresh database of every backend.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

// PostgresDSN is the test server's DSN, or "".
func PostgresDSN() string { return strings.TrimSpace(os.Getenv(PostgresEnv)) }

// OpenSQLite opens a new SQLite database in a temporary directory.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "medsec.db"), true)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres opens a new schema on the test server; it is dropped when
// the test ends.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	dsn := PostgresDSN()
	if dsn == "" {
		t.Skipf("%s is not set", PostgresEnv)
	}
	schema := NewSchema(t, dsn)
	db, err := postgres.Open(context.Background(), WithSchema(dsn, schema))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NewSchema creates a uniquely named schema on the server and drops it when
// t ends. It returns the schema's name.
func NewSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "medsec_test_" + hex.EncodeToString(b[:])
	admin, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	return schema
}

// WithSchema returns dsn with its search_path set to schema.
func WithSchema(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
