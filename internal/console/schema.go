package console

import "github.com/medsec/medsec/internal/store"

// Migrations create the console's own tables: call tickets (a pseudonym
// and a masked name, never the name), patient portal activations and
// accounts (the door's portal token sealed with the console's key), and
// patient sessions (only the SHA-256 of their token).
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
}
