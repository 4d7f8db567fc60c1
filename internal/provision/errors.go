package provision

import "errors"

// Sentinel errors callers branch on. Each refusal is audited.
var (
	// ErrUnknownRecipient: no recipient is registered under that id.
	// Register it (medsec recipient add) with its keys and agreement.
	ErrUnknownRecipient = errors.New("unknown recipient")
	// ErrNotPermitted: the recipient's agreement does not cover the
	// purpose, data classes or form asked for, or the recipient is
	// disabled. Nothing was read or sent.
	ErrNotPermitted = errors.New("not permitted by the recipient's agreement")
	// ErrTampered: a package or receipt was changed after it was signed.
	// Do not use it; ask the sender for a new one.
	ErrTampered = errors.New("altered after signing")
	// ErrTruncated: a package file was cut short (an interrupted copy).
	// Transfer it again.
	ErrTruncated = errors.New("truncated")
	// ErrWrongSender: a package was signed by a key other than the
	// hospital key the recipient trusts. Do not use it.
	ErrWrongSender = errors.New("not from the expected sender")
	// ErrNotForYou: a package is encrypted to another recipient's key.
	ErrNotForYou = errors.New("addressed to another recipient")
	// ErrMalformed: the file is not a medsec package or receipt at all.
	ErrMalformed = errors.New("not a medsec package or receipt")
	// ErrBadReceipt: a destruction receipt does not match the ledger (wrong
	// package, wrong recipient, wrong key, impossible date). The ledger
	// entry stays open; ask the recipient for a correct receipt.
	ErrBadReceipt = errors.New("destruction receipt refused")
	// ErrUnknownPackage: no ledger entry has that package id.
	ErrUnknownPackage = errors.New("unknown package")
	// ErrClosed: the ledger entry already has its receipt.
	ErrClosed = errors.New("ledger entry already closed")
	// ErrInvalid: the input was refused before anything happened; the
	// message says what to fix.
	ErrInvalid = errors.New("invalid input")
)
