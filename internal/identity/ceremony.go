package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/store"
)

// ErrCeremony means a passkey or single-sign-on ceremony is unknown,
// already used or expired. Start the sign-in again.
var ErrCeremony = errors.New("sign-in ceremony unknown, used or expired")

// ceremonyTTL bounds a passkey or single-sign-on ceremony: the state kept
// between its two halves lives this long and is used once.
const ceremonyTTL = 5 * time.Minute

// Ceremony kinds.
const (
	ceremonyPasskeyRegister = "passkey-register"
	ceremonyPasskeyLogin    = "passkey-login"
	ceremonySSO             = "sso"
)

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// saveCeremony keeps a ceremony's state server-side and returns its id,
// dropping ceremonies that have expired.
func (d *Directory) saveCeremony(ctx context.Context, kind, staffID string, data []byte) (string, error) {
	id, now := randomToken(), d.now()
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM staff_ceremonies WHERE expires_at < ?`, now.UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO staff_ceremonies (id, kind, staff_id, data, expires_at) VALUES (?, ?, ?, ?, ?)`,
			id, kind, staffID, data, now.Add(ceremonyTTL).UnixNano())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("keep %s ceremony: %w", kind, err)
	}
	return id, nil
}

// takeCeremony returns and deletes a ceremony's state: it can be finished
// once only.
func (d *Directory) takeCeremony(ctx context.Context, kind, id string) (staffID string, data []byte, err error) {
	if len(id) != 43 {
		return "", nil, ErrCeremony
	}
	var gotKind string
	var expires int64
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		err := tx.QueryRow(ctx, `SELECT kind, staff_id, data, expires_at FROM staff_ceremonies WHERE id = ?`, id).Scan(&gotKind, &staffID, &data, &expires)
		if errors.Is(err, store.ErrNotFound) {
			return ErrCeremony
		}
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM staff_ceremonies WHERE id = ?`, id)
		if n, _ := res.RowsAffected(); err == nil && n != 1 {
			return ErrCeremony // finished concurrently
		}
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if gotKind != kind || !d.now().Before(time.Unix(0, expires)) {
		return "", nil, ErrCeremony
	}
	return staffID, data, nil
}
