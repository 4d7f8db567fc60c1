package lifecycle

import "github.com/medsec/medsec/internal/store"

// Migrations create the life-cycle tables: legal holds and retention runs
// with their signed certificates. Neither holds PHI: patients appear by
// internal id (holds), reasons are typed by staff.
var Migrations = []store.Migration{
	{Component: "lifecycle", Version: 1, Name: "holds and runs", SQL: `CREATE TABLE lifecycle_holds (
		id TEXT PRIMARY KEY,
		patient_id TEXT NOT NULL DEFAULT '',
		class TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL,
		placed_by TEXT NOT NULL,
		placed_at BIGINT NOT NULL,
		released_at BIGINT,
		released_by TEXT,
		release_reason TEXT);
		CREATE TABLE lifecycle_runs (
		id TEXT PRIMARY KEY,
		run_at BIGINT NOT NULL,
		schedule TEXT NOT NULL,
		records BIGINT NOT NULL,
		patients BIGINT NOT NULL,
		certificate TEXT NOT NULL);
		CREATE INDEX lifecycle_runs_at ON lifecycle_runs (run_at)`},
}
