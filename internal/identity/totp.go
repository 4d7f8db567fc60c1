package identity

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// TOTP follows RFC 6238 with the parameters every authenticator app
// understands: SHA-1, 6 digits, 30-second steps. A code is accepted one
// step early or late (clock drift), and never twice: the directory keeps
// the last step used and accepts only later ones.
const totpPeriod = 30

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// staffSecretsKey names the system key that seals TOTP secrets at rest.
const staffSecretsKey = "staff-secrets"

// maxCodeInput caps the one-time code as typed (spaces included).
const maxCodeInput = 16

// TOTPEnrolment is what the user scans into an authenticator app. It holds
// the secret: show it once, over TLS, and never log it.
type TOTPEnrolment struct {
	// URL is the otpauth:// URL to render as a QR code.
	URL string `json:"otpauth_url"`
	// Secret is the base32 secret for typing in by hand.
	Secret string `json:"secret"`
}

// ParseTOTPCode normalizes a typed one-time code: it drops spaces and
// hyphens ("123 456") and requires exactly six ASCII digits.
func ParseTOTPCode(s string) (string, error) {
	if len(s) > maxCodeInput {
		return "", fmt.Errorf("%w: a one-time code has 6 digits", ErrBadSecondFactor)
	}
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
	if len(code) != 6 || strings.ContainsFunc(code, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", fmt.Errorf("%w: a one-time code has 6 digits", ErrBadSecondFactor)
	}
	return code, nil
}

// EnrolTOTP makes a new TOTP secret for an account, sealed at rest. The
// user confirms it with a first code (ConfirmTOTP, or simply by signing in
// with one). A user may enrol themselves once; replacing a confirmed factor
// (a lost phone) is for an IT administrator.
func (d *Directory) EnrolTOTP(ctx context.Context, by Principal, staffID string) (TOTPEnrolment, error) {
	const action = "staff.totp.enrol"
	a, err := d.accountByID(ctx, d.db, staffID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if err := d.mayEnrol(by, a); err != nil {
		return TOTPEnrolment{}, d.refuse(ctx, by, action, staffResource(staffID), err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: d.Policy.TOTPIssuer, AccountName: a.Username,
		Period: totpPeriod, SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("enrol second factor: %w", err)
	}
	sealed, err := d.sealSecret(ctx, a.ID, []byte(key.Secret()))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE staff SET totp_secret = ?, totp_confirmed_at = NULL, totp_last_step = 0, updated_at = ? WHERE id = ?`,
			sealed, d.now().UnixNano(), a.ID)
		if err != nil {
			return fmt.Errorf("store second factor: %w", err)
		}
		return d.record(ctx, tx, by, action, staffResource(a.ID), audit.Success, "new TOTP secret, awaiting a first code")
	})
	if err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{URL: key.URL(), Secret: key.Secret()}, nil
}

func (d *Directory) mayEnrol(by Principal, a account) error {
	if by.Verified() && by.ID == a.ID && by.Role != RoleSystem {
		if a.TOTP {
			return fmt.Errorf("%w: a confirmed second factor can only be replaced by an IT administrator", ErrForbidden)
		}
		return nil
	}
	return d.mayAdminister(by)
}

// ConfirmTOTP confirms a pending enrolment with a first code from the app.
func (d *Directory) ConfirmTOTP(ctx context.Context, by Principal, staffID, code string) error {
	a, err := d.accountByID(ctx, d.db, staffID)
	if err != nil {
		return err
	}
	if by.ID != staffID {
		if err := d.mayAdminister(by); err != nil {
			return d.refuse(ctx, by, "staff.totp.confirm", staffResource(staffID), err)
		}
	}
	if len(a.totpSecret) == 0 {
		return fmt.Errorf("confirm second factor: %w: none is enrolled", ErrInvalid)
	}
	if err := d.checkTOTP(ctx, a, code, d.now(), by.Source); err != nil {
		return d.refuse(ctx, by, "staff.totp.confirm", staffResource(staffID), err)
	}
	return nil
}

// RemoveTOTP deletes an account's second factor (a lost phone). A
// privileged role cannot sign in again until a new one is enrolled.
func (d *Directory) RemoveTOTP(ctx context.Context, by Principal, staffID, reason string) error {
	return d.change(ctx, by, staffID, "staff.totp.remove", reason, func(ctx context.Context, tx *store.Tx, a account) (string, error) {
		_, err := tx.Exec(ctx, `UPDATE staff SET totp_secret = NULL, totp_confirmed_at = NULL, updated_at = ? WHERE id = ?`, d.now().UnixNano(), a.ID)
		return "second factor removed", err
	})
}

// checkTOTP verifies a code for a at now, consumes its time step so it
// cannot be used again, and confirms a pending enrolment.
func (d *Directory) checkTOTP(ctx context.Context, a account, input string, now time.Time, source string) error {
	code, err := ParseTOTPCode(input)
	if err != nil {
		return err
	}
	secret, err := d.openSecret(ctx, a.ID, a.totpSecret)
	if err != nil {
		return err
	}
	step, ok := matchStep(string(secret), code, now)
	if !ok {
		return ErrBadSecondFactor
	}
	if step <= a.totpStep {
		return fmt.Errorf("%w: this code was already used; wait for the next one", ErrBadSecondFactor)
	}
	return d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		return d.consumeStep(ctx, tx, a, step, now, source)
	})
}

// consumeStep records step as used unless a concurrent sign-in used it (or
// a later one) first, which is a replay.
func (d *Directory) consumeStep(ctx context.Context, tx *store.Tx, a account, step int64, now time.Time, source string) error {
	res, err := tx.Exec(ctx, `UPDATE staff SET totp_last_step = ?, totp_confirmed_at = COALESCE(totp_confirmed_at, ?) WHERE id = ? AND totp_last_step < ?`,
		step, now.UnixNano(), a.ID, step)
	if err != nil {
		return fmt.Errorf("record one-time code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: this code was already used; wait for the next one", ErrBadSecondFactor)
	}
	if a.TOTP {
		return nil
	}
	by := Principal{Staff: Staff{ID: a.ID, Role: a.Role}, Source: source}
	return d.record(ctx, tx, by, "staff.totp.confirm", staffResource(a.ID), audit.Success, "second factor confirmed with a first code")
}

// matchStep finds the time step (now ±1) whose code is code. It computes
// all three and compares in constant time.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	cur := now.Unix() / totpPeriod
	var found int64
	ok := 0
	for s := cur - 1; s <= cur+1; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && ok == 0 {
			found, ok = s, 1
		}
	}
	return found, ok == 1
}

func totpAAD(staffID string) []byte { return []byte("medsec.totp.v1\x00" + staffID) }

func (d *Directory) sealSecret(ctx context.Context, staffID string, plain []byte) ([]byte, error) {
	aead, err := d.secretAEAD(ctx)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, totpAAD(staffID)), nil
}

func (d *Directory) openSecret(ctx context.Context, staffID string, sealed []byte) ([]byte, error) {
	aead, err := d.secretAEAD(ctx)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, fmt.Errorf("second factor of %s: sealed secret is damaged", staffID)
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], totpAAD(staffID))
	if err != nil {
		return nil, fmt.Errorf("second factor of %s: sealed secret does not open (changed, or copied from another account)", staffID)
	}
	return plain, nil
}

// secretAEAD is the AES-256-GCM key that seals staff secrets, taken once
// from the keyring.
func (d *Directory) secretAEAD(ctx context.Context) (cipher.AEAD, error) {
	d.secretMu.Lock()
	defer d.secretMu.Unlock()
	if d.secret != nil {
		return d.secret, nil
	}
	if d.Keys == nil {
		return nil, errors.New("identity: no keyring attached to the staff directory to seal second-factor secrets")
	}
	raw, err := d.Keys.SystemKey(ctx, staffSecretsKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("staff secrets key: %w", err)
	}
	if d.secret, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return d.secret, nil
}
