package imaging

import "github.com/medsec/medsec/internal/store"

// Migrations create the quarantine and the import history. A quarantined
// file's content and record (its name on the media, its findings, the MRN
// it carries) are sealed with a data key of the item's own, so deleting
// the item, or erasing its patient, crypto-shreds it; only its digest,
// size, worst severity, detector names and, once matched, its patient's
// pseudonym are plain, for the console's list and the data map. An
// import's typed origin is sealed with the import's own key; events name
// the import id and the media kind instead.
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
	// keyed is 0 for items sealed with the retired shared key (upgrade.go
	// re-seals them); unmatched is 1 while the file names an MRN no
	// patient has; handed_to names the officer a copy was handed to.
	{Component: "imaging", Version: 2, Name: "a data key per quarantined file, its patient by pseudonym, sealed origins", SQL: `ALTER TABLE quarantine_items ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE quarantine_items ADD COLUMN patient TEXT NOT NULL DEFAULT '';
		ALTER TABLE quarantine_items ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
		ALTER TABLE quarantine_items ADD COLUMN unmatched INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE quarantine_items ADD COLUMN handed_to TEXT NOT NULL DEFAULT '';
		ALTER TABLE quarantine_items ADD COLUMN handed_at BIGINT;
		CREATE INDEX quarantine_items_patient ON quarantine_items (patient_id);
		ALTER TABLE imaging_imports ADD COLUMN media TEXT NOT NULL DEFAULT '';
		ALTER TABLE imaging_imports ADD COLUMN origin_sealed BLOB`},
}
