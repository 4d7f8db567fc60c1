package devices

import "github.com/medsec/medsec/internal/store"

// Migrations create the device authority's tables: its CA certificate (the
// key is derived from a KEK-wrapped system secret and never stored), the
// enrollment tokens (hashes only), the registry, and the registry revision
// that gateways poll.
var Migrations = []store.Migration{
	{Component: "devices", Version: 1, Name: "device authority and registry", SQL: `CREATE TABLE device_ca (
		name TEXT PRIMARY KEY,
		cert BLOB NOT NULL,
		created_at BIGINT NOT NULL);
		CREATE TABLE device_tokens (
		digest BLOB PRIMARY KEY,
		kind TEXT NOT NULL,
		patient TEXT NOT NULL,
		model TEXT NOT NULL,
		created_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		used_at BIGINT,
		used_by TEXT);
		CREATE TABLE devices (
		serial TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		model TEXT NOT NULL,
		patient TEXT NOT NULL,
		status TEXT NOT NULL,
		status_reason TEXT NOT NULL DEFAULT '',
		public_key BLOB NOT NULL,
		cert_serial TEXT NOT NULL,
		not_after BIGINT NOT NULL,
		enrolled_at BIGINT NOT NULL,
		changed_at BIGINT NOT NULL,
		revision BIGINT NOT NULL);
		CREATE INDEX devices_status ON devices (status, revision);
		CREATE TABLE device_registry (
		id INTEGER PRIMARY KEY,
		revision BIGINT NOT NULL);
		INSERT INTO device_registry (id, revision) VALUES (1, 0)`},
}
