package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Migration is one versioned schema change of one component. Versions count
// from 1 within a component; a component's migrations apply in order and each
// exactly once.
type Migration struct {
	Component string
	Version   int
	Name      string
	// SQL is the change, statements separated by ";\n". Written for SQLite;
	// on PostgreSQL the type BLOB reads as BYTEA unless Postgres is set.
	SQL string
	// Postgres, when set, replaces SQL on PostgreSQL.
	Postgres string
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component TEXT NOT NULL,
	version INTEGER NOT NULL,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (component, version))`

// Migrate applies, in the order given, every migration not yet recorded.
// It refuses a database whose recorded version of a component is newer than
// this binary knows (a downgrade), so an old binary never writes to a schema
// it does not understand.
func (db *DB) Migrate(ctx context.Context, sets ...[]Migration) error {
	if _, err := db.Exec(ctx, migrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, set := range sets {
		if err := db.migrateComponent(ctx, set); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) migrateComponent(ctx context.Context, set []Migration) error {
	if len(set) == 0 {
		return nil
	}
	comp := set[0].Component
	return db.ReadWriteTx(ctx, func(ctx context.Context, tx *Tx) error {
		var have int
		err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?`, comp).Scan(&have)
		if err != nil {
			return fmt.Errorf("read schema version of %s: %w", comp, err)
		}
		if have > len(set) {
			return fmt.Errorf("database schema of %s is at version %d, this medsec knows only %d: use a newer medsec", comp, have, len(set))
		}
		for i, m := range set[have:] {
			if m.Component != comp || m.Version != have+i+1 {
				return fmt.Errorf("migration %s/%d %q is out of order", m.Component, m.Version, m.Name)
			}
			if err := tx.applyMigration(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *Tx) applyMigration(ctx context.Context, m Migration) error {
	body := m.SQL
	if t.Dialect() == Postgres {
		body = strings.ReplaceAll(body, "BLOB", "BYTEA")
		if m.Postgres != "" {
			body = m.Postgres
		}
	}
	for _, stmt := range strings.Split(body, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := t.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("migration %s/%d %q: %w", m.Component, m.Version, m.Name, err)
		}
	}
	_, err := t.Exec(ctx, `INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`,
		m.Component, m.Version, m.Name, time.Now().UnixNano())
	return err
}
