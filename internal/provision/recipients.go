package provision

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/store"
)

// Kinds of recipients (the paper's locations 8, 10 and 11).
const (
	KindPharmacy = "pharmacy" // location 8: prescriptions (OCS)
	KindPharma   = "pharma"   // location 8: pharmaceutical companies
	KindHospital = "hospital" // location 10: referrals
	KindAgency   = "agency"   // location 11: government agencies, de-identified or aggregated only
)

// Kinds lists the recipient kinds.
var Kinds = []string{KindPharmacy, KindPharma, KindHospital, KindAgency}

// Purposes a provision may name (HL7 PurposeOfUse).
var Purposes = []string{"TREAT", "ETREAT", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "MLTRAINING"}

// Recipient is an external organization the hospital may send data to,
// with its keys and its agreement.
type Recipient struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// AgeRecipient is the recipient's age X25519 public key (age1…):
	// packages are encrypted to it.
	AgeRecipient string `json:"age_recipient"`
	// ReceiptKey is the recipient's Ed25519 note verifier key: its
	// destruction receipts must verify under it.
	ReceiptKey string    `json:"receipt_key"`
	Agreement  Agreement `json:"agreement"`
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by"`
	Disabled   time.Time `json:"disabled,omitzero"`
}

// Agreement is what the recipient may receive, why, and for how long.
type Agreement struct {
	Purposes []string `json:"purposes"`
	Classes  []string `json:"classes"`
	// Form is the most detailed form it may receive: identified,
	// deidentified or aggregated. Agencies never receive identified data.
	Form string `json:"form"`
	// Retention is how long it may keep a package before destroying it
	// and sending its receipt.
	Retention lifecycle.Period `json:"retention"`
	// Reference names the signed agreement (contract number).
	Reference string `json:"reference,omitempty"`
}

var (
	recipientIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,39}$`)
	classPattern       = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// Validate says what is wrong with the recipient, all at once.
func (r Recipient) Validate() error {
	var errs []error
	if !recipientIDPattern.MatchString(r.ID) {
		errs = append(errs, fmt.Errorf("id %q: 2–40 lower-case letters, digits and -", r.ID))
	}
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > 100 || strings.ContainsFunc(r.Name, isControl) {
		errs = append(errs, errors.New("name: 1–100 printable characters"))
	}
	if !slices.Contains(Kinds, r.Kind) {
		errs = append(errs, fmt.Errorf("kind %q: one of %s", r.Kind, strings.Join(Kinds, ", ")))
	}
	if _, err := age.ParseX25519Recipient(r.AgeRecipient); err != nil {
		errs = append(errs, fmt.Errorf("age recipient: not an age X25519 public key (age1…): %v", err))
	}
	if v, err := note.NewVerifier(r.ReceiptKey); err != nil {
		errs = append(errs, fmt.Errorf("receipt key: not an Ed25519 verifier key (name+hash+key): %v", err))
	} else if v.Name() != r.ID {
		errs = append(errs, fmt.Errorf("receipt key: it is named %q, not after the recipient %q", v.Name(), r.ID))
	}
	return oneError(append(errs, r.Agreement.validate(r.Kind)...))
}

// oneError joins problems into one line a person reads at once (the
// command line prints one line per error).
func oneError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func (a Agreement) validate(kind string) []error {
	var errs []error
	if len(a.Purposes) == 0 {
		errs = append(errs, errors.New("agreement: no purposes"))
	}
	for _, p := range a.Purposes {
		if !slices.Contains(Purposes, p) {
			errs = append(errs, fmt.Errorf("agreement: purpose %q is not one of %s", p, strings.Join(Purposes, ", ")))
		}
	}
	if len(a.Classes) == 0 {
		errs = append(errs, errors.New("agreement: no data classes"))
	}
	for _, c := range a.Classes {
		if !classPattern.MatchString(c) {
			errs = append(errs, fmt.Errorf("agreement: class %q: lower-case letters, digits and _", c))
		}
	}
	if !slices.Contains(bundle.Forms, a.Form) {
		errs = append(errs, fmt.Errorf("agreement: form %q: one of %s", a.Form, strings.Join(bundle.Forms, ", ")))
	}
	if kind == KindAgency && a.Form == bundle.Identified {
		errs = append(errs, errors.New("agreement: an agency receives de-identified or aggregated data only, never identified"))
	}
	if a.Retention.IsZero() {
		errs = append(errs, errors.New("agreement: retention must be a positive period (30d, 1y)"))
	}
	if len(a.Reference) > 200 || strings.ContainsFunc(a.Reference, isControl) {
		errs = append(errs, errors.New("agreement: reference: at most 200 printable characters"))
	}
	return errs
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// formRank orders forms by detail: identified > deidentified > aggregated.
func formRank(f string) int { return len(bundle.Forms) - slices.Index(bundle.Forms, f) }

// registryRoles may change the recipient registry.
var registryRoles = []string{identity.RoleSecurityOfficer, identity.RoleITAdmin, identity.RoleSystem}

func mayRegister(by identity.Principal) error {
	if !by.Verified() || !slices.Contains(registryRoles, by.Role) {
		return fmt.Errorf("%w: only a security officer or IT administrator changes the recipient registry", ErrInvalid)
	}
	return nil
}

// AddRecipient registers a recipient; it is audited.
func (s *Service) AddRecipient(ctx context.Context, by identity.Principal, r Recipient) (Recipient, error) {
	if err := mayRegister(by); err != nil {
		return Recipient{}, err
	}
	r.Agreement.Purposes, r.Agreement.Classes = uniqueSorted(r.Agreement.Purposes), uniqueSorted(r.Agreement.Classes)
	if err := r.Validate(); err != nil {
		return Recipient{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	r.Created, r.CreatedBy, r.Disabled = s.now(), by.ID, time.Time{}
	err := s.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		a := r.Agreement
		if _, err := tx.Exec(ctx, `INSERT INTO provision_recipients (id, name, kind, age_recipient, receipt_key, purposes, classes, form, retention, reference, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Name, r.Kind, r.AgeRecipient, r.ReceiptKey, strings.Join(a.Purposes, ","),
			strings.Join(a.Classes, ","), a.Form, a.Retention.String(), a.Reference, r.Created.UnixNano(), r.CreatedBy); err != nil {
			return err
		}
		_, err := s.log.AppendTx(ctx, tx, registryEvent(by, "provision.recipient.add", r, describe(r), r.Created))
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return Recipient{}, fmt.Errorf("%w: recipient %q is already registered", ErrInvalid, r.ID)
	}
	if err != nil {
		return Recipient{}, fmt.Errorf("add recipient %s: %w", r.ID, err)
	}
	return r, nil
}

func describe(r Recipient) string {
	a := r.Agreement
	return fmt.Sprintf("%s %q: purposes %s, classes %s, form %s, keep at most %s, agreement %q", r.Kind, r.Name,
		strings.Join(a.Purposes, ","), strings.Join(a.Classes, ","), a.Form, a.Retention, a.Reference)
}

func registryEvent(by identity.Principal, action string, r Recipient, reason string, at time.Time) audit.Event {
	return audit.Event{Time: at, Actor: by.ID, Role: by.Role, Action: action, Purpose: "HOPERAT", Resource: "Recipient/" + r.ID,
		Outcome: audit.Success, Source: by.Source, Reason: reason}
}

// DisableRecipient stops all further provision to a recipient (its open
// ledger entries still await their receipts).
func (s *Service) DisableRecipient(ctx context.Context, by identity.Principal, id, reason string) error {
	if err := mayRegister(by); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 500 {
		return fmt.Errorf("%w: say why the recipient is disabled (at most 500 characters)", ErrInvalid)
	}
	r, err := s.Recipient(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	return s.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE provision_recipients SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL`, now.UnixNano(), id); err != nil {
			return err
		}
		_, err := s.log.AppendTx(ctx, tx, registryEvent(by, "provision.recipient.disable", r, reason, now))
		return err
	})
}

const recipientCols = `id, name, kind, age_recipient, receipt_key, purposes, classes, form, retention, reference, created_at, created_by, disabled_at`

// Recipient returns a registered recipient.
func (s *Service) Recipient(ctx context.Context, id string) (Recipient, error) {
	rs, err := s.queryRecipients(ctx, `SELECT `+recipientCols+` FROM provision_recipients WHERE id = ?`, id)
	if err != nil {
		return Recipient{}, err
	}
	if len(rs) == 0 {
		return Recipient{}, fmt.Errorf("%w %q: register it with medsec recipient add", ErrUnknownRecipient, id)
	}
	return rs[0], nil
}

// Recipients lists the registry.
func (s *Service) Recipients(ctx context.Context) ([]Recipient, error) {
	return s.queryRecipients(ctx, `SELECT `+recipientCols+` FROM provision_recipients ORDER BY id`)
}

func (s *Service) queryRecipients(ctx context.Context, q string, args ...any) ([]Recipient, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	defer rows.Close()
	var out []Recipient
	for rows.Next() {
		var r Recipient
		var purposes, classes, retention string
		var created int64
		var disabled *int64
		if err := rows.Scan(&r.ID, &r.Name, &r.Kind, &r.AgeRecipient, &r.ReceiptKey, &purposes, &classes, &r.Agreement.Form,
			&retention, &r.Agreement.Reference, &created, &r.CreatedBy, &disabled); err != nil {
			return nil, err
		}
		r.Agreement.Purposes, r.Agreement.Classes = splitList(purposes), splitList(classes)
		if r.Agreement.Retention, err = lifecycle.ParsePeriod(retention); err != nil {
			return nil, fmt.Errorf("recipient %s: %w", r.ID, err)
		}
		r.Created = time.Unix(0, created)
		if disabled != nil {
			r.Disabled = time.Unix(0, *disabled)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func uniqueSorted(s []string) []string {
	out := slices.Clone(s)
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	slices.Sort(out)
	return slices.Compact(out)
}
