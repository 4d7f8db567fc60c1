package ingest

import "github.com/medsec/medsec/internal/store"

// Migrations create the message ledger (one row per device message: the
// claim, then its outcome; no PHI, the payload lives in the door's tables)
// and the recovery watermark into the audit log; version 2 the ledger of
// gateway refusal records (which ones were audited, and the counts alerts
// are raised on; no PHI: a device serial, a certificate fingerprint or an
// address of a caller that is no patient's).
var Migrations = []store.Migration{
	{Component: "ingest", Version: 1, Name: "message ledger", SQL: `CREATE TABLE ingest_messages (
		message_id BLOB PRIMARY KEY,
		device TEXT NOT NULL,
		seq BIGINT NOT NULL,
		gateway TEXT NOT NULL,
		sent_at BIGINT NOT NULL,
		state TEXT NOT NULL,
		owner TEXT NOT NULL,
		claimed_at BIGINT NOT NULL,
		done_at BIGINT,
		readings INTEGER NOT NULL DEFAULT 0,
		refused INTEGER NOT NULL DEFAULT 0,
		reason TEXT NOT NULL DEFAULT '');
		CREATE TABLE ingest_recovery (
		id INTEGER PRIMARY KEY,
		audit_scanned BIGINT NOT NULL);
		INSERT INTO ingest_recovery (id, audit_scanned) VALUES (1, 0)`},
	{Component: "ingest", Version: 2, Name: "gateway refusal ledger", SQL: `CREATE TABLE ingest_refusals (
		gateway TEXT NOT NULL,
		record_id TEXT NOT NULL,
		subject TEXT NOT NULL,
		reason TEXT NOT NULL,
		count BIGINT NOT NULL,
		minute BIGINT NOT NULL,
		received_at BIGINT NOT NULL,
		PRIMARY KEY (gateway, record_id));
		CREATE INDEX ingest_refusals_subject ON ingest_refusals (subject, minute)`},
}
