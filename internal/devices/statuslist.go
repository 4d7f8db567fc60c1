package devices

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StatusList is what a gateway needs to refuse withdrawn devices: every
// device or gateway that is not active and whose certificate has not yet
// expired (an expired certificate fails on its own). The device CA signs
// it, so a gateway trusts it however it travelled.
type StatusList struct {
	Revision int64         `json:"revision"`
	Issued   time.Time     `json:"issued"`
	Entries  []StatusEntry `json:"entries"`
}

// StatusEntry is one withdrawn device.
type StatusEntry struct {
	Serial string    `json:"serial"`
	Status Status    `json:"status"`
	Since  time.Time `json:"since"`
}

// statusListContext is hashed before the body, so a status-list signature
// can never be mistaken for a certificate signature by the same CA key.
const statusListContext = "medsec device status list v1\n"

// ErrStatusListInvalid: the list's signature does not verify with the
// device CA, or the list is malformed. Keep the previous list and alert.
var ErrStatusListInvalid = errors.New("device status list does not verify")

// StatusList reads the current list.
func (a *Authority) StatusList(ctx context.Context) (StatusList, error) {
	rev, err := a.Revision(ctx)
	if err != nil {
		return StatusList{}, err
	}
	rows, err := a.cfg.DB.Query(ctx, `SELECT serial, status, changed_at FROM devices WHERE status <> ? AND not_after > ? ORDER BY serial`,
		string(StatusActive), a.now().UnixNano())
	if err != nil {
		return StatusList{}, fmt.Errorf("read device status list: %w", err)
	}
	defer rows.Close()
	l := StatusList{Revision: rev, Issued: a.now().UTC(), Entries: []StatusEntry{}}
	for rows.Next() {
		var e StatusEntry
		var since int64
		if err := rows.Scan(&e.Serial, &e.Status, &since); err != nil {
			return StatusList{}, err
		}
		e.Since = time.Unix(0, since).UTC()
		l.Entries = append(l.Entries, e)
	}
	return l, rows.Err()
}

// SignedStatusList returns the current list encoded and its signature.
func (a *Authority) SignedStatusList(ctx context.Context) (body, sig []byte, err error) {
	l, err := a.StatusList(ctx)
	if err != nil {
		return nil, nil, err
	}
	if body, err = json.Marshal(l); err != nil {
		return nil, nil, fmt.Errorf("encode device status list: %w", err)
	}
	digest := statusListDigest(body)
	sig, err = ecdsa.SignASN1(rand.Reader, a.caKey, digest[:])
	if err != nil {
		return nil, nil, fmt.Errorf("sign device status list: %w", err)
	}
	return body, sig, nil
}

func statusListDigest(body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(statusListContext))
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// OpenStatusList verifies a signed list with the device CA certificate and
// decodes it.
func OpenStatusList(body, sig []byte, ca *x509.Certificate) (StatusList, error) {
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return StatusList{}, fmt.Errorf("%w: the device CA key is not ECDSA", ErrStatusListInvalid)
	}
	digest := statusListDigest(body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return StatusList{}, ErrStatusListInvalid
	}
	var l StatusList
	if err := json.Unmarshal(body, &l); err != nil {
		return StatusList{}, fmt.Errorf("%w: %w", ErrStatusListInvalid, err)
	}
	return l, nil
}

// Index maps each listed serial to its status.
func (l StatusList) Index() map[string]Status {
	m := make(map[string]Status, len(l.Entries))
	for _, e := range l.Entries {
		m[e.Serial] = e.Status
	}
	return m
}
