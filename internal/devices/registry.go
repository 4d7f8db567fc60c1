package devices

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/store"
)

// Status is a registry entry's standing.
type Status string

// Statuses. Active and suspended can change into each other; revoked and
// lost are final.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusRevoked   Status = "revoked"
	StatusLost      Status = "lost"
)

// ParseStatus reads a status name.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains([]Status{StatusActive, StatusSuspended, StatusRevoked, StatusLost}, st) {
		return "", fmt.Errorf("%w: status %q is not active, suspended, revoked or lost", ErrBadRequest, s)
	}
	return st, nil
}

// Refusal is the reason a message from a device in this status is refused
// ("" when active).
func (s Status) Refusal() phd.Reason {
	switch s {
	case StatusActive:
		return ""
	case StatusSuspended:
		return ReasonDeviceSuspended
	case StatusLost:
		return ReasonDeviceLost
	}
	return ReasonDeviceRevoked
}

// Device is one registry entry.
type Device struct {
	Serial     string    `json:"serial"`
	Kind       Kind      `json:"kind"`
	Model      string    `json:"model,omitempty"`
	Patient    string    `json:"patient,omitempty"` // pseudonym
	Status     Status    `json:"status"`
	Reason     string    `json:"reason,omitempty"` // why the status was set
	CertSerial string    `json:"certificate_serial"`
	NotAfter   time.Time `json:"not_after"` // of the newest certificate
	EnrolledAt time.Time `json:"enrolled_at"`
	ChangedAt  time.Time `json:"changed_at"`
	Revision   int64     `json:"revision"`

	PublicKey crypto.PublicKey `json:"-"`
}

// Check says whether a message from the device may be accepted: an error
// with the device's refusal reason when it is not active.
func (d Device) Check() error {
	if r := d.Status.Refusal(); r != "" {
		return &phd.Error{Reason: r, Detail: fmt.Sprintf("device %s is %s", d.Serial, d.Status)}
	}
	return nil
}

const deviceCols = `serial, kind, model, patient, status, status_reason, public_key, cert_serial, not_after, enrolled_at, changed_at, revision`

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var pub []byte
	var notAfter, enrolled, changed int64
	err := row.Scan(&d.Serial, &d.Kind, &d.Model, &d.Patient, &d.Status, &d.Reason, &pub, &d.CertSerial,
		&notAfter, &enrolled, &changed, &d.Revision)
	if err != nil {
		return Device{}, err
	}
	d.NotAfter, d.EnrolledAt, d.ChangedAt = time.Unix(0, notAfter).UTC(), time.Unix(0, enrolled).UTC(), time.Unix(0, changed).UTC()
	if d.PublicKey, err = x509.ParsePKIXPublicKey(pub); err != nil {
		return Device{}, fmt.Errorf("device %s: stored public key: %w", d.Serial, err)
	}
	return d, nil
}

// Device returns the registry entry of serial, or ErrUnknownDevice.
func (a *Authority) Device(ctx context.Context, serial string) (Device, error) {
	return a.device(ctx, a.cfg.DB, serial)
}

func (a *Authority) device(ctx context.Context, q store.Querier, serial string) (Device, error) {
	d, err := scanDevice(q.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE serial = ?`, serial))
	if errors.Is(err, store.ErrNotFound) {
		return Device{}, fmt.Errorf("%w: %s", ErrUnknownDevice, serial)
	}
	if err != nil {
		return Device{}, fmt.Errorf("read device %s: %w", serial, err)
	}
	return d, nil
}

// Filter narrows a registry listing; zero fields match everything.
type Filter struct {
	Kind    Kind
	Status  Status
	Patient string // pseudonym
}

// Devices lists registry entries in serial order.
func (a *Authority) Devices(ctx context.Context, f Filter) ([]Device, error) {
	q := `SELECT ` + deviceCols + ` FROM devices WHERE 1 = 1`
	var args []any
	for col, v := range map[string]string{"kind": string(f.Kind), "status": string(f.Status), "patient": f.Patient} {
		if v != "" {
			q += ` AND ` + col + ` = ?`
			args = append(args, v)
		}
	}
	rows, err := a.cfg.DB.Query(ctx, q+` ORDER BY serial`, args...)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SetStatus changes a device's or gateway's status, bumps the registry
// revision (gateways pick the change up on their next poll) and audits
// the change in the same transaction. by names who decided; reason says
// why, in words (no PHI).
func (a *Authority) SetStatus(ctx context.Context, serial string, to Status, reason, by string) (Device, error) {
	if _, err := ParseStatus(string(to)); err != nil {
		return Device{}, err
	}
	var out Device
	err := a.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		d, err := a.device(ctx, tx, serial)
		if err != nil {
			return err
		}
		if err := checkTransition(d.Status, to); err != nil {
			return fmt.Errorf("device %s: %w", serial, err)
		}
		rev, err := bumpRevision(ctx, tx)
		if err != nil {
			return err
		}
		now := a.now()
		_, err = tx.Exec(ctx, `UPDATE devices SET status = ?, status_reason = ?, changed_at = ?, revision = ? WHERE serial = ?`,
			string(to), reason, now.UnixNano(), rev, serial)
		if err != nil {
			return fmt.Errorf("set status of device %s: %w", serial, err)
		}
		ev := audit.Event{Time: now, Actor: by, Action: "device." + statusAction(to), Patient: d.Patient,
			Resource: string(d.Kind) + "/" + serial, Outcome: audit.Success, Reason: reason}
		if _, err := a.cfg.Audit.AppendTx(ctx, tx, ev); err != nil {
			return err
		}
		d.Status, d.Reason, d.ChangedAt, d.Revision = to, reason, now.UTC(), rev
		out = d
		return nil
	})
	return out, err
}

func checkTransition(from, to Status) error {
	if from == StatusRevoked || from == StatusLost {
		return fmt.Errorf("%w: %s is final", ErrTransition, from)
	}
	if from == to {
		return fmt.Errorf("%w: already %s", ErrTransition, to)
	}
	return nil
}

func statusAction(s Status) string {
	switch s {
	case StatusActive:
		return "resume"
	case StatusSuspended:
		return "suspend"
	case StatusLost:
		return "report-lost"
	}
	return "revoke"
}

// bumpRevision increments the registry revision in tx and returns it.
func bumpRevision(ctx context.Context, tx *store.Tx) (int64, error) {
	if _, err := tx.Exec(ctx, `UPDATE device_registry SET revision = revision + 1 WHERE id = 1`); err != nil {
		return 0, fmt.Errorf("bump registry revision: %w", err)
	}
	var rev int64
	if err := tx.QueryRow(ctx, `SELECT revision FROM device_registry WHERE id = 1`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read registry revision: %w", err)
	}
	return rev, nil
}

// Revision is the registry's current revision; it grows with every status
// change, so a gateway polls cheaply with it.
func (a *Authority) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := a.cfg.DB.QueryRow(ctx, `SELECT revision FROM device_registry WHERE id = 1`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read registry revision: %w", err)
	}
	return rev, nil
}
