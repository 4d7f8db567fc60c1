// Package alerts is the security officer's inbox: break-glass accesses to
// review, access anomalies, quarantined files, overdue destruction receipts,
// failed verifications, revoked devices. Any capability raises an alert; the
// console lists them; acknowledging one (with a note) is audited. Alerts
// never hold PHI: patients appear by pseudonym.
//
// It serves the paper's Table 3 management requirement — a security
// management system a small hospital without security staff can run.
package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// Migrations create the alerts table.
var Migrations = []store.Migration{
	{Component: "alerts", Version: 1, Name: "alerts", SQL: `CREATE TABLE alerts (
		id TEXT PRIMARY KEY,
		kind TEXT NOT NULL,
		severity TEXT NOT NULL,
		subject TEXT NOT NULL DEFAULT '',
		patient TEXT NOT NULL DEFAULT '',
		summary TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '',
		dedup TEXT,
		created_at BIGINT NOT NULL,
		acknowledged_at BIGINT,
		acknowledged_by TEXT NOT NULL DEFAULT '',
		note TEXT NOT NULL DEFAULT '');
		CREATE UNIQUE INDEX alerts_dedup ON alerts (dedup);
		CREATE INDEX alerts_open ON alerts (acknowledged_at, created_at)`},
	{Component: "alerts", Version: 2, Name: "alert resource", SQL: `ALTER TABLE alerts ADD COLUMN resource TEXT NOT NULL DEFAULT ''`},
}

// Kinds of alert.
const (
	KindBreakGlass  = "break-glass"
	KindAnomaly     = "access-anomaly"
	KindQuarantine  = "quarantine"
	KindOverdue     = "destruction-overdue"
	KindVerify      = "verification-failed"
	KindDevice      = "device-revoked"
	KindGuard       = "workstation-guard"
	KindPosture     = "posture"
	KindProvision   = "provision"
	KindRetention   = "retention"
	KindAuthFailure = "authentication"
)

// Severities.
const (
	Info     = "info"
	Warning  = "warning"
	Critical = "critical"
)

// Alert is one entry of the inbox.
type Alert struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Subject  string `json:"subject,omitempty"` // who or what: a staff id, device serial, file digest
	Patient  string `json:"patient,omitempty"` // pseudonym only
	// Resource names what the alert is about, for the review to open it
	// (e.g. "BreakGlass/bg_…", "Quarantine/q_…").
	Resource string    `json:"resource,omitempty"`
	Summary  string    `json:"summary"` // one line a person acts on
	Detail   string    `json:"detail,omitempty"`
	Created  time.Time `json:"created"`
	// Dedup, when set, makes raising the same alert again a no-op
	// (e.g. "overdue:<ledger id>").
	Dedup          string    `json:"-"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
	Note           string    `json:"note,omitempty"`
}

// Open reports whether the alert still waits for someone.
func (a Alert) Open() bool { return a.AcknowledgedAt.IsZero() }

// ErrNotFound means no alert has that id.
var ErrNotFound = errors.New("no such alert")

// Inbox stores and lists alerts.
type Inbox struct {
	db  *store.DB
	log *audit.Log
	Now func() time.Time
}

// New returns the inbox on db; acknowledgements are audited to log.
func New(db *store.DB, log *audit.Log) *Inbox { return &Inbox{db: db, log: log} }

func (in *Inbox) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// Raise stores an alert. An alert whose Dedup key was raised before is
// dropped silently (returns false).
func (in *Inbox) Raise(ctx context.Context, q store.Querier, a Alert) (bool, error) {
	if a.Kind == "" || a.Summary == "" {
		return false, errors.New("raise alert: kind and summary are required")
	}
	if a.Severity == "" {
		a.Severity = Warning
	}
	b := make([]byte, 8)
	rand.Read(b)
	a.ID = "al_" + hex.EncodeToString(b)
	var dedup any
	if a.Dedup != "" {
		dedup = a.Dedup
	}
	// ON CONFLICT, not a caught unique violation: on PostgreSQL a failed
	// statement aborts the caller's whole transaction.
	res, err := q.Exec(ctx, `INSERT INTO alerts (id, kind, severity, subject, patient, resource, summary, detail, dedup, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup) DO NOTHING`,
		a.ID, a.Kind, a.Severity, a.Subject, a.Patient, a.Resource, a.Summary, a.Detail, dedup, in.now().UnixNano())
	if err != nil {
		return false, fmt.Errorf("raise alert: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Filter selects alerts.
type Filter struct {
	OpenOnly bool
	Kind     string
	Limit    int
}

// List returns alerts, newest first.
func (in *Inbox) List(ctx context.Context, f Filter) ([]Alert, error) {
	var where []string
	var args []any
	if f.OpenOnly {
		where = append(where, "acknowledged_at IS NULL")
	}
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, f.Kind)
	}
	q := `SELECT id, kind, severity, subject, patient, resource, summary, detail, created_at, acknowledged_at, acknowledged_by, note FROM alerts`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := in.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var created int64
		var acked *int64
		if err := rows.Scan(&a.ID, &a.Kind, &a.Severity, &a.Subject, &a.Patient, &a.Resource, &a.Summary, &a.Detail, &created, &acked, &a.AcknowledgedBy, &a.Note); err != nil {
			return nil, err
		}
		a.Created = time.Unix(0, created)
		if acked != nil {
			a.AcknowledgedAt = time.Unix(0, *acked)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Counts returns the number of open alerts by kind.
func (in *Inbox) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := in.db.Query(ctx, `SELECT kind, COUNT(*) FROM alerts WHERE acknowledged_at IS NULL GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Acknowledge closes an alert with a note, audited in the same
// transaction. Only a security officer or an IT administrator may.
func (in *Inbox) Acknowledge(ctx context.Context, by identity.Principal, id, note string) error {
	if !by.Verified() {
		return errors.New("acknowledge alert: not authenticated")
	}
	if by.Role != identity.RoleSecurityOfficer && by.Role != identity.RoleITAdmin {
		return fmt.Errorf("acknowledge alert: a %s may not acknowledge alerts", by.Role)
	}
	note = strings.TrimSpace(note)
	if note == "" || len(note) > 2000 {
		return errors.New("acknowledge alert: write a note (1 to 2000 characters) saying what was done")
	}
	return in.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?, note = ? WHERE id = ? AND acknowledged_at IS NULL`,
			in.now().UnixNano(), by.ID, note, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w (or it was already acknowledged): %s", ErrNotFound, id)
		}
		_, err = in.log.AppendTx(ctx, tx, audit.Event{Actor: by.ID, Role: by.Role, Action: "alert.acknowledge",
			Resource: "Alert/" + id, Outcome: audit.Success, Source: by.Source, Reason: note})
		return err
	})
}
