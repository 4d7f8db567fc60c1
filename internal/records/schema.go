package records

import "github.com/medsec/medsec/internal/store"

// Migrations create the patient-data tables. Their names start with phi_
// and only this package may name them (TestOneDoor enforces it). Nothing
// identifying is stored in plaintext: fields and payloads are sealed with
// the patient's data key, and identifiers are found through keyed blind
// indexes.
var Migrations = []store.Migration{
	{Component: "records", Version: 1, Name: "patients and records", SQL: `CREATE TABLE phi_patients (
		id TEXT PRIMARY KEY,
		pseudonym TEXT NOT NULL UNIQUE,
		department TEXT NOT NULL DEFAULT '',
		ward TEXT NOT NULL DEFAULT '',
		labels TEXT NOT NULL DEFAULT '',
		attending TEXT NOT NULL DEFAULT '',
		care_team TEXT NOT NULL DEFAULT '',
		active_encounter INTEGER NOT NULL DEFAULT 0,
		created_at BIGINT NOT NULL,
		created_by TEXT NOT NULL,
		destroyed_at BIGINT);
		CREATE TABLE phi_fields (
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		field TEXT NOT NULL,
		sealed BLOB NOT NULL,
		PRIMARY KEY (patient_id, field));
		CREATE TABLE phi_index (
		kind TEXT NOT NULL,
		digest BLOB NOT NULL,
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		PRIMARY KEY (kind, digest, patient_id));
		CREATE INDEX phi_index_patient ON phi_index (patient_id);
		CREATE TABLE phi_records (
		id TEXT PRIMARY KEY,
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		class TEXT NOT NULL,
		code_digest BLOB,
		effective_at BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		created_by TEXT NOT NULL,
		source TEXT NOT NULL DEFAULT '',
		labels TEXT NOT NULL DEFAULT '',
		code BLOB NOT NULL,
		payload BLOB NOT NULL);
		CREATE INDEX phi_records_patient ON phi_records (patient_id, class, effective_at)`},
	{Component: "records", Version: 2, Name: "consents, care relationships, break-glass, patient portal, surnames", SQL: `ALTER TABLE phi_patients ADD COLUMN consents TEXT NOT NULL DEFAULT '';
		ALTER TABLE phi_patients ADD COLUMN staff_member INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE phi_patients ADD COLUMN surname_digest BLOB;
		CREATE TABLE phi_consents (
		id TEXT PRIMARY KEY,
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		purpose TEXT NOT NULL,
		permit INTEGER NOT NULL,
		classes TEXT NOT NULL DEFAULT '',
		from_at BIGINT NOT NULL,
		until_at BIGINT,
		form_ref BLOB,
		recorded_by TEXT NOT NULL,
		recorded_at BIGINT NOT NULL,
		withdrawn_at BIGINT,
		withdrawn_by TEXT NOT NULL DEFAULT '',
		withdraw_reason BLOB);
		CREATE INDEX phi_consents_patient ON phi_consents (patient_id, recorded_at);
		CREATE TABLE phi_break_glass (
		id TEXT PRIMARY KEY,
		staff_id TEXT NOT NULL,
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		reason BLOB NOT NULL,
		started_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL);
		CREATE INDEX phi_break_glass_open ON phi_break_glass (staff_id, patient_id, expires_at);
		CREATE TABLE phi_portal_tokens (
		token_hash BLOB PRIMARY KEY,
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		issued_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		revoked_at BIGINT);
		CREATE TABLE staff_surnames (
		staff_id TEXT PRIMARY KEY,
		digest BLOB NOT NULL)`},
	{Component: "records", Version: 3, Name: "imaging instances", SQL: `CREATE TABLE phi_imaging (
		id TEXT PRIMARY KEY,
		patient_id TEXT NOT NULL REFERENCES phi_patients (id),
		study_digest BLOB NOT NULL,
		series_digest BLOB NOT NULL,
		instance_digest BLOB NOT NULL,
		content_digest BLOB NOT NULL,
		effective_at BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		created_by TEXT NOT NULL,
		source TEXT NOT NULL DEFAULT '',
		size BIGINT NOT NULL,
		meta BLOB NOT NULL,
		data BLOB NOT NULL);
		CREATE UNIQUE INDEX phi_imaging_instance ON phi_imaging (instance_digest);
		CREATE INDEX phi_imaging_study ON phi_imaging (study_digest);
		CREATE INDEX phi_imaging_patient ON phi_imaging (patient_id, effective_at)`},
	// phi_items lists every stored item of a patient — clinical records and
	// imaging instances — with its class and date, for the data map and
	// retention (ids, classes and times only; no content).
	{Component: "records", Version: 4, Name: "items view over records and imaging", SQL: `CREATE VIEW phi_items AS
		SELECT id, patient_id, class, effective_at FROM phi_records
		UNION ALL SELECT id, patient_id, 'imaging', effective_at FROM phi_imaging`},
}
