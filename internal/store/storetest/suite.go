package storetest

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/medsec/medsec/internal/store"
)

var suiteMigrations = []store.Migration{
	{Component: "suite", Version: 1, Name: "things", SQL: `CREATE TABLE things (
		id TEXT PRIMARY KEY,
		n BIGINT NOT NULL,
		data BLOB)`},
	{Component: "suite", Version: 2, Name: "counters", SQL: `CREATE TABLE counters (
		name TEXT PRIMARY KEY,
		value BIGINT NOT NULL);
		INSERT INTO counters (name, value) VALUES ('c', 0)`},
}

// Run is the conformance suite of the storage layer. Every backend passes
// it; components rely on exactly these behaviours.
func Run(t *testing.T, open func(t testing.TB) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"MigrateOnce", testMigrateOnce},
		{"RefuseDowngrade", testRefuseDowngrade},
		{"RefuseOutOfOrder", testRefuseOutOfOrder},
		{"NotFound", testNotFound},
		{"Conflict", testConflict},
		{"RollbackOnError", testRollback},
		{"BinaryAndIntegers", testBinaryAndIntegers},
		{"MultiRowInsert", testMultiRowInsert},
		{"ConcurrentChainWriters", testConcurrentChain},
		{"QueryRowContext", testQueryRowContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			if err := db.Migrate(context.Background(), suiteMigrations); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			tc.fn(t, db)
		})
	}
}

func testMigrateOnce(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if err := db.Migrate(ctx, suiteMigrations); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = ?`, "suite").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("got %d recorded migrations, want 2", n)
	}
	if err := db.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'c'`).Scan(&n); err != nil {
		t.Fatalf("migration 2 did not apply: %v", err)
	}
}

func testRefuseDowngrade(t *testing.T, db *store.DB) {
	err := db.Migrate(context.Background(), suiteMigrations[:1])
	if err == nil || !strings.Contains(err.Error(), "newer medsec") {
		t.Errorf("migrate with an older schema list: got %v, want a downgrade refusal", err)
	}
}

func testRefuseOutOfOrder(t *testing.T, db *store.DB) {
	bad := []store.Migration{{Component: "other", Version: 2, Name: "skips one", SQL: "SELECT 1"}}
	if err := db.Migrate(context.Background(), bad); err == nil {
		t.Error("a migration list starting at version 2 was accepted")
	}
}

func testNotFound(t *testing.T, db *store.DB) {
	var id string
	err := db.QueryRow(context.Background(), `SELECT id FROM things WHERE id = ?`, "nope").Scan(&id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func testConflict(t *testing.T, db *store.DB) {
	ctx := context.Background()
	insert := func() error {
		return db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO things (id, n) VALUES (?, ?)`, "a", 1)
			return err
		})
	}
	if err := insert(); err != nil {
		t.Fatal(err)
	}
	if err := insert(); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate insert: got %v, want ErrConflict", err)
	}
}

func testRollback(t *testing.T, db *store.DB) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO things (id, n) VALUES (?, ?)`, "r", 1); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the function's error", err)
	}
	var n int
	db.QueryRow(ctx, `SELECT COUNT(*) FROM things`).Scan(&n)
	if n != 0 {
		t.Errorf("rolled-back insert left %d rows", n)
	}
}

func testBinaryAndIntegers(t *testing.T, db *store.DB) {
	ctx := context.Background()
	blob := bytes.Repeat([]byte{0, 0xff, '?', '\'', 1}, 40000)
	if _, err := db.Exec(ctx, `INSERT INTO things (id, n, data) VALUES (?, ?, ?)`, "b", int64(math.MaxInt64), blob); err != nil {
		t.Fatal(err)
	}
	var n int64
	var got []byte
	if err := db.QueryRow(ctx, `SELECT n, data FROM things WHERE id = ?`, "b").Scan(&n, &got); err != nil {
		t.Fatal(err)
	}
	if n != math.MaxInt64 || !bytes.Equal(got, blob) {
		t.Errorf("round trip changed the values: n=%d, blob equal=%v", n, bytes.Equal(got, blob))
	}
}

func testMultiRowInsert(t *testing.T, db *store.DB) {
	ctx := context.Background()
	args := []any{"m1", 1, []byte("x"), "m2", 2, []byte("y"), "m3", 3, nil}
	if _, err := db.Exec(ctx, `INSERT INTO things (id, n, data) VALUES `+store.Placeholders(3, 3), args...); err != nil {
		t.Fatal(err)
	}
	var sum int
	db.QueryRow(ctx, `SELECT SUM(n) FROM things`).Scan(&sum)
	if sum != 6 {
		t.Errorf("got sum %d, want 6", sum)
	}
}

// testConcurrentChain checks that LockChain serializes read-modify-write
// transactions: no increment is lost.
func testConcurrentChain(t *testing.T, db *store.DB) {
	ctx := context.Background()
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
					if err := tx.LockChain(ctx, "c"); err != nil {
						return err
					}
					var v int
					if err := tx.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'c'`).Scan(&v); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `UPDATE counters SET value = ? WHERE name = 'c'`, v+1)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var v int
	db.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'c'`).Scan(&v)
	if v != workers*each {
		t.Errorf("got counter %d, want %d: a concurrent increment was lost", v, workers*each)
	}
}

// testQueryRowContext: a one-row read whose context is already cancelled
// is refused with the context's error; one under a live cancellable
// context reads its row (on SQLite it runs without watching the context).
func testQueryRowContext(t *testing.T, db *store.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	var n int
	if err := db.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'c'`).Scan(&n); err != nil {
		t.Fatalf("read under a live context: %v", err)
	}
	cancel()
	err := db.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'c'`).Scan(&n)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("read under a cancelled context: got %v, want context.Canceled", err)
	}
}
