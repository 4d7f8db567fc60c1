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
}
