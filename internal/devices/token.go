package devices

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// tokenPrefix starts every enrollment token, so one pasted into the wrong
// place is recognised.
const tokenPrefix = "mset1-"

// TokenRequest asks for an enrollment token.
type TokenRequest struct {
	Kind Kind
	// PatientID is the internal id of the patient a device will speak for;
	// the token (and later the certificate) carries only its pseudonym.
	PatientID string
	// Model is the device model the certificate request must name, or the
	// gateway's name for a gateway token.
	Model string
	TTL   time.Duration
	// By names the operator in the audit log.
	By string
}

// Token is an issued enrollment token. Secret is shown once; the registry
// keeps only its SHA-256.
type Token struct {
	Secret  string    `json:"token"`
	Kind    Kind      `json:"kind"`
	Patient string    `json:"patient,omitempty"` // pseudonym
	Model   string    `json:"model"`
	Expires time.Time `json:"expires"`
}

// IssueToken makes a one-time, expiring enrollment token and audits it.
func (a *Authority) IssueToken(ctx context.Context, req TokenRequest) (Token, error) {
	if err := checkTokenRequest(&req); err != nil {
		return Token{}, err
	}
	t := Token{Secret: newTokenSecret(), Kind: req.Kind, Model: req.Model, Expires: a.now().Add(req.TTL).UTC()}
	if req.Kind == KindDevice {
		facts, err := a.cfg.Door.Facts(ctx, req.PatientID)
		if err != nil {
			return Token{}, fmt.Errorf("enrollment token: %w", err)
		}
		if facts.Destroyed {
			return Token{}, fmt.Errorf("%w: patient %s was destroyed", ErrBadRequest, facts.Pseudonym)
		}
		t.Patient = facts.Pseudonym
	}
	err := a.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO device_tokens (digest, kind, patient, model, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			tokenDigest(t.Secret), string(t.Kind), t.Patient, t.Model, req.By, a.now().UnixNano(), t.Expires.UnixNano())
		if err != nil {
			return fmt.Errorf("store enrollment token: %w", err)
		}
		_, err = a.cfg.Audit.AppendTx(ctx, tx, audit.Event{Time: a.now(), Actor: req.By, Action: "device.enrollment-token",
			Patient: t.Patient, Resource: string(t.Kind) + "-model/" + t.Model, Outcome: audit.Success,
			Reason: "valid until " + t.Expires.Format(time.RFC3339)})
		return err
	})
	if err != nil {
		return Token{}, err
	}
	return t, nil
}

func checkTokenRequest(req *TokenRequest) error {
	if req.TTL <= 0 {
		req.TTL = DefaultTokenTTL
	}
	if req.By == "" {
		return fmt.Errorf("%w: the operator issuing a token must be named", ErrBadRequest)
	}
	if err := checkLabel("model", req.Model); err != nil {
		return err
	}
	switch req.Kind {
	case KindDevice:
		if req.PatientID == "" {
			return fmt.Errorf("%w: a device token names the patient", ErrBadRequest)
		}
	case KindGateway:
		if req.PatientID != "" {
			return fmt.Errorf("%w: a gateway serves many patients; its token names none", ErrBadRequest)
		}
	default:
		return fmt.Errorf("%w: token kind %q is not device or gateway", ErrBadRequest, req.Kind)
	}
	return nil
}

func newTokenSecret() string {
	b := make([]byte, 20) // 160 bits
	rand.Read(b)
	return tokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func tokenDigest(secret string) []byte {
	h := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return h[:]
}

// tokenGrant is what a redeemed token allows.
type tokenGrant struct {
	kind    Kind
	patient string
	model   string
}

// redeem marks the token used, in tx, and returns what it grants. A token
// is found by its hash, so no secret is compared in variable time.
func (a *Authority) redeem(ctx context.Context, tx *store.Tx, secret, usedBy string) (tokenGrant, error) {
	digest := tokenDigest(secret)
	now := a.now().UnixNano()
	res, err := tx.Exec(ctx, `UPDATE device_tokens SET used_at = ?, used_by = ? WHERE digest = ? AND used_at IS NULL AND expires_at > ?`,
		now, usedBy, digest, now)
	if err != nil {
		return tokenGrant{}, fmt.Errorf("redeem enrollment token: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return tokenGrant{}, ErrTokenInvalid
	}
	var g tokenGrant
	err = tx.QueryRow(ctx, `SELECT kind, patient, model FROM device_tokens WHERE digest = ?`, digest).Scan(&g.kind, &g.patient, &g.model)
	if err != nil {
		return tokenGrant{}, fmt.Errorf("read enrollment token: %w", err)
	}
	return g, nil
}

// checkLabel keeps serials, models and gateway names to the alphabet
// device ids use in message headers, logs and metric labels.
func checkLabel(what, s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("%w: %s must be 1..64 characters", ErrBadRequest, what)
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %s may hold only letters, digits and . _ : -", ErrBadRequest, what)
		}
	}
	return nil
}
