package devices_test

import (
	"context"
	"testing"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/sqlite"
)

func openSQLiteAt(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
