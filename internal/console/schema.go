package console

import "github.com/medsec/medsec/internal/store"

// Migrations create the console's own tables: call tickets, patient
// portal activations and accounts (the door's portal token sealed with the
// console's key), patient sessions (only the SHA-256 of their token) and
// the enrolled waiting-room screens (only the SHA-256 of their token).
//
// Version 2 takes the patient out of the ticket rows in plaintext: a
// ticket keeps a keyed digest of the patient's pseudonym (to find a
// patient's tickets on erasure) and the pseudonym and masked name sealed
// with the console's key, so a copied database file no longer joins a
// masked name, department and day to the door's patient table. Tickets are of one day,
// so the old table is dropped rather than converted. Portal user names
// become keyed digests (username_mac); the console converts the rows of
// version 1 when it opens, and the username column, which SQLite cannot
// drop while it is UNIQUE, then holds only the account id.
var Migrations = []store.Migration{
	{Component: "console", Version: 1, Name: "call tickets and patient portal", SQL: `CREATE TABLE console_tickets (
		id TEXT PRIMARY KEY,
		department TEXT NOT NULL,
		day TEXT NOT NULL,
		number INTEGER NOT NULL,
		pseudonym TEXT NOT NULL,
		display_name TEXT NOT NULL,
		state TEXT NOT NULL,
		room TEXT NOT NULL DEFAULT '',
		issued_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		called_at BIGINT,
		done_at BIGINT);
		CREATE UNIQUE INDEX console_tickets_number ON console_tickets (department, day, number);
		CREATE TABLE console_activations (
		id TEXT PRIMARY KEY,
		code_mac BLOB NOT NULL UNIQUE,
		pseudonym TEXT NOT NULL,
		token BLOB NOT NULL,
		token_expires BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		used_at BIGINT,
		issued_by TEXT NOT NULL,
		created_at BIGINT NOT NULL);
		CREATE TABLE console_patient_accounts (
		id TEXT PRIMARY KEY,
		username TEXT NOT NULL UNIQUE,
		pseudonym TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		token BLOB NOT NULL,
		token_expires BIGINT NOT NULL,
		failures INTEGER NOT NULL DEFAULT 0,
		locked_until BIGINT NOT NULL DEFAULT 0,
		created_at BIGINT NOT NULL,
		last_login BIGINT);
		CREATE TABLE console_patient_sessions (
		token_hash BLOB PRIMARY KEY,
		account_id TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		last_seen BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		revoked_at BIGINT)`},
	{Component: "console", Version: 2, Name: "sealed tickets, user name digests, enrolled displays", SQL: `DROP TABLE console_tickets;
		CREATE TABLE console_tickets (
		id TEXT PRIMARY KEY,
		department TEXT NOT NULL,
		day TEXT NOT NULL,
		number INTEGER NOT NULL,
		patient_link BLOB NOT NULL,
		patient_sealed BLOB NOT NULL,
		name_sealed BLOB NOT NULL,
		state TEXT NOT NULL,
		room TEXT NOT NULL DEFAULT '',
		issued_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		called_at BIGINT,
		done_at BIGINT);
		CREATE UNIQUE INDEX console_tickets_number ON console_tickets (department, day, number);
		CREATE INDEX console_tickets_patient ON console_tickets (patient_link);
		ALTER TABLE console_patient_accounts ADD COLUMN username_mac BLOB;
		CREATE UNIQUE INDEX console_patient_accounts_username_mac ON console_patient_accounts (username_mac);
		CREATE TABLE console_displays (
		id TEXT PRIMARY KEY,
		department TEXT NOT NULL,
		label TEXT NOT NULL DEFAULT '',
		token_hash BLOB NOT NULL UNIQUE,
		enrolled_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		revoked_at BIGINT)`},
}
