package provision

import "github.com/medsec/medsec/internal/store"

// Migrations create the recipient registry and the provision ledger. The
// ledger names patients by pseudonym only and keeps no copy of what was
// sent: its SHA-256, size and terms are enough to match a receipt.
var Migrations = []store.Migration{
	{Component: "provision", Version: 1, Name: "recipients and ledger", SQL: `CREATE TABLE provision_recipients (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		kind TEXT NOT NULL,
		age_recipient TEXT NOT NULL,
		receipt_key TEXT NOT NULL,
		purposes TEXT NOT NULL,
		classes TEXT NOT NULL,
		form TEXT NOT NULL,
		retention TEXT NOT NULL,
		reference TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		created_by TEXT NOT NULL,
		disabled_at BIGINT);
		CREATE TABLE provision_ledger (
		id TEXT PRIMARY KEY,
		recipient_id TEXT NOT NULL REFERENCES provision_recipients (id),
		patient TEXT NOT NULL,
		purpose TEXT NOT NULL,
		basis TEXT NOT NULL DEFAULT '',
		classes TEXT NOT NULL,
		form TEXT NOT NULL,
		requested_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		deadline BIGINT NOT NULL,
		digest TEXT NOT NULL,
		size BIGINT NOT NULL,
		withheld INTEGER NOT NULL DEFAULT 0,
		receipt TEXT,
		destroyed_at BIGINT,
		closed_at BIGINT);
		CREATE INDEX provision_ledger_patient ON provision_ledger (patient);
		CREATE INDEX provision_ledger_open ON provision_ledger (closed_at, deadline)`},
}
