package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging/dicomhdr"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Audit actions of the officer's reads and decisions.
const (
	actionList    = "quarantine.list"
	actionRead    = "quarantine.read"
	actionRelease = "quarantine.release"
	actionDelete  = "quarantine.delete"
)

// Decision is an officer's release or deletion.
type Decision struct {
	Who    identity.Principal
	Reason string
	// Out receives the released file when it is not a DICOM image the
	// store takes (a report, a viewer the officer checked), or when the
	// officer asks for a copy for forensics. Release refuses a non-image
	// without Out. The copy leaves medsec: the data map lists it under
	// the officer until someone records its destruction.
	Out io.Writer
}

// Released says what a release did.
type Released struct {
	Item Item
	// Stored is set when the file went into the imaging store.
	Stored *records.ImagingReceipt
	// Written is the number of bytes handed to Decision.Out.
	Written int64
}

// Release lets a quarantined file in: a DICOM image is stored through the
// door like an import (preamble zeroed, matched by MRN), anything else is
// written to d.Out. Only a security officer with a second factor may, with
// a reason. The shipped policy does not let the officer write imaging
// (security officers read audit data, not clinical data), so the store
// is written by the import job with the officer named in the event's
// source and reason. The release is audited, with the patient's pseudonym
// when known, before any byte reaches d.Out. The sealed file is kept
// until someone deletes it.
func (in *Intake) Release(ctx context.Context, d Decision, id string) (Released, error) {
	it, err := in.decide(ctx, d, id, actionRelease, StateHeld)
	if err != nil {
		return Released{}, err
	}
	content, err := in.heldContent(ctx, it)
	if err != nil {
		return Released{}, in.refuse(ctx, d.Who, "Quarantine/"+id, actionRelease, err)
	}
	out := Released{Item: it}
	h, herr := dicomhdr.Read(content)
	image := herr == nil && !h.Directory() && len(h.Missing()) == 0
	if !image && d.Out == nil {
		return out, in.refuse(ctx, d.Who, "Quarantine/"+id, actionRelease, fmt.Errorf("%w: the file is not a DICOM image the store takes; give a destination for it", ErrInvalid))
	}
	s := settlement{state: StateReleased, action: actionRelease, what: "handed to the officer", from: []string{StateHeld}, handedOut: d.Out != nil}
	if image {
		if out.Stored, err = in.storeReleased(ctx, d, it, h, content); err != nil {
			return out, in.refuse(ctx, d.Who, "Quarantine/"+id, actionRelease, err)
		}
		s.match = patientMatch{patientID: out.Stored.PatientID, pseudonym: out.Stored.Pseudonym}
		s.what = "stored as " + out.Stored.ID
	} else if it.Patient == "" {
		if s.match, err = in.match(ctx, id, mrnOf(content), false); err != nil {
			return out, err
		}
	}
	if d.Out != nil && image {
		s.what += "; a copy handed to the officer"
	}
	if err := in.settle(ctx, d, id, s); err != nil {
		return out, err
	}
	if d.Out != nil {
		n, err := d.Out.Write(content)
		out.Written = int64(n)
		if err != nil {
			return out, fmt.Errorf("write released file: %w", err)
		}
	}
	return out, in.decided(ctx, &out.Item)
}

// storeReleased stores a released image through the door as the import
// job, the officer named in the request's source and in the instance's.
func (in *Intake) storeReleased(ctx context.Context, d Decision, it Item, h dicomhdr.Header, content []byte) (*records.ImagingReceipt, error) {
	data := bytes.Clone(content)
	dicomhdr.ZeroPreamble(data)
	who := importer
	who.Source = "released by " + d.Who.ID
	req := records.Request{Who: who, Purpose: importRequest.Purpose}
	rec, err := in.cfg.Door.StoreImaging(ctx, req, h.PatientID, instanceOf(h, data, "quarantine "+it.ID+" released by "+d.Who.ID))
	if err != nil {
		return nil, fmt.Errorf("store released file: %w", err)
	}
	return &rec, nil
}

// Delete destroys a quarantined file (held or released) by destroying its
// key: content and record can never be read again, here or in a backup.
// The row stays (digest, detectors, who deleted it and why) so the list
// still shows what arrived. Only a security officer with a second factor
// may, with a reason; audited in the transaction of the destruction.
func (in *Intake) Delete(ctx context.Context, d Decision, id string) (Item, error) {
	it, err := in.decide(ctx, d, id, actionDelete, StateHeld, StateReleased)
	if err != nil {
		return Item{}, err
	}
	s := settlement{state: StateDeleted, action: actionDelete, what: "its key destroyed: content and record crypto-shredded",
		from: []string{StateHeld, StateReleased}, shred: "deleted by the security officer: " + strings.TrimSpace(d.Reason)}
	if err := in.settle(ctx, d, id, s); err != nil {
		return Item{}, err
	}
	// Freed pages were zeroed (secure_delete); push them out of the WAL.
	if err := in.cfg.DB.Compact(ctx); err != nil {
		return Item{}, err
	}
	return it, in.decided(ctx, &it)
}

// decided reads the item again after a decision, for the officer who made
// it (the decision's audit event covers the read).
func (in *Intake) decided(ctx context.Context, it *Item) error {
	got, sealed, err := in.row(ctx, it.ID)
	if err != nil {
		return err
	}
	*it = got
	return in.unseal(ctx, it, sealed, map[string]string{})
}

// decide checks the officer, the reason and the item's state. Refusals
// are audited.
func (in *Intake) decide(ctx context.Context, d Decision, id, action string, from ...string) (Item, error) {
	if err := checkOfficer(d); err != nil {
		return Item{}, in.refuse(ctx, d.Who, "Quarantine/"+id, action, err)
	}
	it, _, err := in.row(ctx, id)
	if err != nil {
		return Item{}, err
	}
	if !slices.Contains(from, it.State) {
		return it, in.refuse(ctx, d.Who, "Quarantine/"+id, action, fmt.Errorf("%w: it was %s on %s by %s", ErrNotHeld, it.State, it.DecidedAt.Format(time.DateOnly), it.DecidedBy))
	}
	return it, nil
}

// heldContent unseals a held file's content with the item's key and
// checks it is the file that was held.
func (in *Intake) heldContent(ctx context.Context, it Item) ([]byte, error) {
	var sealed []byte
	if err := in.cfg.DB.QueryRow(ctx, `SELECT content FROM quarantine_items WHERE id = ?`, it.ID).Scan(&sealed); err != nil {
		return nil, fmt.Errorf("read quarantine %s: %w", it.ID, err)
	}
	if sealed == nil {
		return nil, fmt.Errorf("%w: its content was too large to keep or unreadable; set the media aside", ErrNotHeld)
	}
	dk, err := in.cfg.Keys.ForOwner(ctx, in.cfg.DB, itemOwner(it.ID))
	if err != nil {
		return nil, fmt.Errorf("open quarantine %s: %w", it.ID, err)
	}
	content, err := dk.Open(contentField(it.ID), sealed)
	if err != nil {
		return nil, fmt.Errorf("open quarantine %s: %w", it.ID, err)
	}
	if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != it.SHA256 {
		return nil, fmt.Errorf("open quarantine %s: content differs from the file held", it.ID)
	}
	return content, nil
}

// isOfficer reports whether p is a security officer signed in with a
// second factor.
func isOfficer(p identity.Principal) bool {
	return p.Verified() && p.Role == identity.RoleSecurityOfficer && p.MFA
}

func checkOfficer(d Decision) error {
	if !isOfficer(d.Who) {
		return ErrNotOfficer
	}
	r := strings.TrimSpace(d.Reason)
	if r == "" || len(r) > maxReason {
		return fmt.Errorf("%w: give a reason of 1 to %d characters", ErrInvalid, maxReason)
	}
	return nil
}

// refuse audits a refused read or decision and returns cause.
func (in *Intake) refuse(ctx context.Context, who identity.Principal, resource, action string, cause error) error {
	outcome := audit.Failed
	if errors.Is(cause, ErrNotOfficer) || errors.Is(cause, ErrNotImporter) {
		outcome = audit.Denied
	}
	ev := audit.Event{Time: in.now(), Actor: actorOf(who), Role: who.Role, Action: action, Resource: resource,
		Outcome: outcome, Source: who.Source, Reason: cause.Error()}
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// officerEvent is the audit event of an officer's successful read or
// decision.
func (in *Intake) officerEvent(who identity.Principal, action, resource, patient, reason string) audit.Event {
	return audit.Event{Time: in.now(), Actor: who.ID, Role: who.Role, Action: action, Purpose: "HOPERAT", Patient: patient,
		Resource: resource, Outcome: audit.Success, Source: who.Source, Reason: reason}
}

func actorOf(p identity.Principal) string {
	if p.ID == "" {
		return "anonymous"
	}
	return p.ID
}

// settlement is what a decision changes.
type settlement struct {
	state, action, what string
	from                []string
	// match is the item's patient when the decision learned it.
	match     patientMatch
	handedOut bool
	// shred, when set, destroys the item's key with this basis.
	shred string
}

// settle records the decision with its audit event in one transaction:
// the state, the patient when it was learned, the officer a copy goes to,
// the key's destruction. A concurrent decision loses with ErrNotHeld.
func (in *Intake) settle(ctx context.Context, d Decision, id string, s settlement) error {
	now, reason := in.now(), strings.TrimSpace(d.Reason)
	set := `state = ?, decided_at = ?, decided_by = ?, decision = ?`
	args := []any{s.state, now.UnixNano(), d.Who.ID, reason}
	if s.match.pseudonym != "" {
		set += `, patient = ?, patient_id = ?, unmatched = 0`
		args = append(args, s.match.pseudonym, s.match.patientID)
	}
	if s.handedOut {
		set += `, handed_to = ?, handed_at = ?`
		args = append(args, d.Who.ID, now.UnixNano())
	}
	if s.shred != "" {
		set += `, content = NULL`
	}
	q := `UPDATE quarantine_items SET ` + set + ` WHERE id = ? AND state IN (` + strings.TrimSuffix(strings.Repeat("?,", len(s.from)), ",") + `)`
	args = append(args, id)
	for _, f := range s.from {
		args = append(args, f)
	}
	return in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: %s was decided meanwhile", ErrNotHeld, id)
		}
		if s.shred != "" {
			if err := in.cfg.Keys.DestroyKey(ctx, tx, itemOwner(id), d.Who.ID, s.shred); err != nil {
				return err
			}
		}
		patient, err := itemPatient(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = in.cfg.Audit.AppendTx(ctx, tx, in.officerEvent(d.Who, s.action, "Quarantine/"+id, patient, reason+"; "+s.what))
		return err
	})
}

// itemPatient is the pseudonym an item records, "" when none.
func itemPatient(ctx context.Context, q store.Querier, id string) (string, error) {
	var p string
	if err := q.QueryRow(ctx, `SELECT patient FROM quarantine_items WHERE id = ?`, id).Scan(&p); err != nil {
		return "", fmt.Errorf("read quarantine %s: %w", id, err)
	}
	return p, nil
}
