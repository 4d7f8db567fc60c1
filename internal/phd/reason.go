package phd

import (
	"errors"
	"fmt"
)

// Reason is a stable, lowercase code saying why a message or a measurement
// was refused or flagged. Reasons are used as Prometheus label values and in
// audit records, so they never change once released and never carry PHI.
type Reason string

// The reasons this package produces.
const (
	// ReasonMalformed: the bytes are not the CBOR/COSE structure expected.
	// The sender has a bug or the message was damaged; do not retry as is.
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: the message exceeds Limits.MaxMessageBytes.
	ReasonTooLarge Reason = "too-large"
	// ReasonTooManyMeasurements: the batch holds more than Limits.MaxMeasurements.
	ReasonTooManyMeasurements Reason = "too-many-measurements"
	// ReasonUnsupportedAlgorithm: the signature algorithm is not ES256 or EdDSA,
	// or does not fit the device's key.
	ReasonUnsupportedAlgorithm Reason = "unsupported-algorithm"
	// ReasonBadSignature: the signature does not verify with the device's key
	// (forged, tampered, or signed by another key).
	ReasonBadSignature Reason = "bad-signature"
	// ReasonNotVerified: Open was called before a successful Verify.
	ReasonNotVerified Reason = "not-verified"
	// ReasonWrongRecipient: the payload is encrypted to another hospital key.
	ReasonWrongRecipient Reason = "wrong-recipient"
	// ReasonUndecryptable: the payload names our key but does not decrypt.
	ReasonUndecryptable Reason = "undecryptable"
	// ReasonBindingMismatch: the encrypted batch names another device,
	// patient, sequence number or message id than the signed header.
	ReasonBindingMismatch Reason = "binding-mismatch"
	// ReasonCertificateMismatch: the signed header names a device or a
	// patient other than the one the device's certificate is bound to.
	ReasonCertificateMismatch Reason = "certificate-mismatch"
	// ReasonUnknownCode: the measurement code is not in the catalog.
	ReasonUnknownCode Reason = "unknown-code"
	// ReasonUnitMismatch: the unit is not one the catalog allows for the code.
	ReasonUnitMismatch Reason = "unit-mismatch"
	// ReasonOutOfRangeFlagged: the value lies outside physiological limits.
	// The reading is accepted and stored flagged, never rejected for this.
	ReasonOutOfRangeFlagged Reason = "out-of-range-flagged"
	// ReasonTimestampFuture: a timestamp lies beyond the allowed clock skew
	// in the future; the device clock needs setting.
	ReasonTimestampFuture Reason = "timestamp-future"
	// ReasonTimestampTooOld: a timestamp is older than the allowed age.
	ReasonTimestampTooOld Reason = "timestamp-too-old"
	// ReasonReplayDuplicate: the sequence number was seen already. A gateway
	// acknowledges the message again but does not store it twice.
	ReasonReplayDuplicate Reason = "replay-duplicate"
	// ReasonReplayTooOld: the sequence number is older than the replay window.
	ReasonReplayTooOld Reason = "replay-too-old"
	// ReasonInternal: an error that is not the sender's fault.
	ReasonInternal Reason = "internal"
)

// Error is a refusal with its reason. Detail says what was wrong in words a
// person can act on; it never contains measured values or patient data.
type Error struct {
	Reason Reason
	Detail string
	Err    error
}

func (e *Error) Error() string {
	msg := "phd: " + string(e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBadSignature) and friends match any Error
// with the same reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Detail == "" && t.Err == nil && t.Reason == e.Reason
}

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

func refuseWrap(r Reason, detail string, err error) *Error {
	return &Error{Reason: r, Detail: detail, Err: err}
}

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrMalformed: reject the message and tell the sender it is broken.
	ErrMalformed = &Error{Reason: ReasonMalformed}
	// ErrTooLarge: reject before reading further.
	ErrTooLarge = &Error{Reason: ReasonTooLarge}
	// ErrBadSignature: reject, count, audit; the sender may be an impostor.
	ErrBadSignature = &Error{Reason: ReasonBadSignature}
	// ErrNotVerified: a programming error; call Verify first.
	ErrNotVerified = &Error{Reason: ReasonNotVerified}
	// ErrWrongRecipient: the message is for another hospital key; a server
	// with several keys tries the one the recipient key id names.
	ErrWrongRecipient = &Error{Reason: ReasonWrongRecipient}
	// ErrBindingMismatch: reject and audit; someone re-signed another
	// device's ciphertext.
	ErrBindingMismatch = &Error{Reason: ReasonBindingMismatch}
	// ErrCertificateMismatch: reject and audit; a device speaks for a
	// patient (or as a device) its certificate does not name.
	ErrCertificateMismatch = &Error{Reason: ReasonCertificateMismatch}
	// ErrTimestampFuture: reject; the device clock must be set.
	ErrTimestampFuture = &Error{Reason: ReasonTimestampFuture}
	// ErrTimestampTooOld: reject; the message is stale.
	ErrTimestampTooOld = &Error{Reason: ReasonTimestampTooOld}
)

// ReasonOf returns the reason of err, or ReasonInternal when err carries none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonInternal
}
