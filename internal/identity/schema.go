package identity

import "github.com/medsec/medsec/internal/store"

// Migrations create the staff directory's tables. Times are Unix
// nanoseconds; flags are integers (0/1) so both backends read them alike.
var Migrations = []store.Migration{
	{Component: "identity", Version: 1, Name: "staff", SQL: `CREATE TABLE staff (
		id TEXT PRIMARY KEY,
		username TEXT NOT NULL UNIQUE,
		display_name TEXT NOT NULL,
		role TEXT NOT NULL,
		department TEXT NOT NULL DEFAULT '',
		position TEXT NOT NULL DEFAULT '',
		wards TEXT NOT NULL DEFAULT '',
		password_hash TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		disabled_at BIGINT)`},
	{Component: "identity", Version: 2, Name: "authentication and authority", SQL: migrationV2},
}

// migrationV2 adds the second factor, sign-in state, sessions, passkeys,
// single sign-on subjects, server-side ceremony state and grants.
const migrationV2 = `ALTER TABLE staff ADD COLUMN valid_from BIGINT;
ALTER TABLE staff ADD COLUMN valid_until BIGINT;
ALTER TABLE staff ADD COLUMN updated_at BIGINT;
ALTER TABLE staff ADD COLUMN last_login_at BIGINT;
ALTER TABLE staff ADD COLUMN totp_secret BLOB;
ALTER TABLE staff ADD COLUMN totp_confirmed_at BIGINT;
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN webauthn_handle BLOB;
ALTER TABLE staff ADD COLUMN sso_issuer TEXT;
ALTER TABLE staff ADD COLUMN sso_subject TEXT;
CREATE UNIQUE INDEX staff_sso ON staff (sso_issuer, sso_subject);
CREATE UNIQUE INDEX staff_webauthn_handle ON staff (webauthn_handle);
CREATE TABLE staff_login_guard (
	username TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	window_start BIGINT NOT NULL,
	locked_until BIGINT NOT NULL,
	lockouts INTEGER NOT NULL,
	version BIGINT NOT NULL);
CREATE TABLE staff_sessions (
	id TEXT PRIMARY KEY,
	token_hash BLOB NOT NULL UNIQUE,
	staff_id TEXT NOT NULL,
	method TEXT NOT NULL,
	mfa INTEGER NOT NULL,
	source TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT,
	revoke_reason TEXT NOT NULL DEFAULT '');
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
CREATE TABLE staff_passkeys (
	rp_id TEXT NOT NULL,
	credential_id TEXT NOT NULL,
	staff_id TEXT NOT NULL,
	credential BLOB NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT,
	PRIMARY KEY (rp_id, credential_id));
CREATE INDEX staff_passkeys_staff ON staff_passkeys (staff_id);
CREATE TABLE staff_ceremonies (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	staff_id TEXT NOT NULL,
	data BLOB NOT NULL,
	expires_at BIGINT NOT NULL);
CREATE INDEX staff_ceremonies_expiry ON staff_ceremonies (expires_at);
CREATE TABLE staff_grants (
	id TEXT PRIMARY KEY,
	staff_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	what TEXT NOT NULL,
	systems TEXT NOT NULL,
	patient TEXT NOT NULL DEFAULT '',
	starts_at BIGINT NOT NULL,
	ends_at BIGINT,
	reason TEXT NOT NULL,
	privileged INTEGER NOT NULL,
	state TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	requested_at BIGINT NOT NULL,
	decided_by TEXT NOT NULL DEFAULT '',
	decided_at BIGINT,
	decision_reason TEXT NOT NULL DEFAULT '',
	last_used_at BIGINT);
CREATE INDEX staff_grants_staff ON staff_grants (staff_id, kind, state);
CREATE INDEX staff_grants_state ON staff_grants (state)`
