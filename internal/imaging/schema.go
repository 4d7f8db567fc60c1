package imaging

import "github.com/medsec/medsec/internal/store"

// Migrations create the quarantine and the import history. The files in
// quarantine are sealed (content and the record of where they came from);
// only their digest, size, worst severity and detector names are plain,
// for the console's list.
var Migrations = []store.Migration{
	{Component: "imaging", Version: 1, Name: "quarantine and imports", SQL: `CREATE TABLE quarantine_items (
		id TEXT PRIMARY KEY,
		import_id TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		size BIGINT NOT NULL,
		severity TEXT NOT NULL,
		detectors TEXT NOT NULL,
		state TEXT NOT NULL,
		held_at BIGINT NOT NULL,
		decided_at BIGINT,
		decided_by TEXT NOT NULL DEFAULT '',
		decision TEXT NOT NULL DEFAULT '',
		record BLOB NOT NULL,
		content BLOB);
		CREATE INDEX quarantine_items_state ON quarantine_items (state, held_at);
		CREATE TABLE imaging_imports (
		id TEXT PRIMARY KEY,
		origin TEXT NOT NULL,
		operator TEXT NOT NULL,
		started_at BIGINT NOT NULL,
		finished_at BIGINT NOT NULL,
		files INTEGER NOT NULL,
		bytes BIGINT NOT NULL,
		stored INTEGER NOT NULL,
		duplicates INTEGER NOT NULL,
		quarantined INTEGER NOT NULL,
		skipped INTEGER NOT NULL,
		failed INTEGER NOT NULL)`},
}
