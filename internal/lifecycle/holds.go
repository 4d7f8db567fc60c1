package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// Hold is a legal hold: data it covers is never destroyed, neither by a
// retention run nor on a patient's request, until it is released. A hold
// covers one patient, one class, one class of one patient, or (neither set)
// everything.
type Hold struct {
	ID        string    `json:"id"`
	PatientID string    `json:"patient_id,omitempty"`
	Class     string    `json:"class,omitempty"`
	Reason    string    `json:"reason"`
	PlacedBy  string    `json:"placed_by"`
	Placed    time.Time `json:"placed"`
	Released  time.Time `json:"released,omitzero"`
	// ReleasedBy and ReleaseReason say who lifted it and why.
	ReleasedBy    string `json:"released_by,omitempty"`
	ReleaseReason string `json:"release_reason,omitempty"`
}

// Scope says in words what the hold covers (no PHI: the patient by id).
func (h Hold) Scope() string {
	switch {
	case h.PatientID != "" && h.Class != "":
		return "the " + h.Class + " records of patient " + h.PatientID
	case h.PatientID != "":
		return "all data of patient " + h.PatientID
	case h.Class != "":
		return "all " + h.Class + " records"
	}
	return "all data"
}

// maxReason caps reasons and request numbers typed by staff.
const maxReason = 500

// holdRoles may place and release legal holds.
var holdRoles = []string{identity.RoleSecurityOfficer, identity.RoleITAdmin, identity.RoleSystem}

func mayHold(by identity.Principal) error {
	if !by.Verified() {
		return fmt.Errorf("%w: legal holds need an authenticated member of staff", ErrInvalid)
	}
	if !slices.Contains(holdRoles, by.Role) {
		return fmt.Errorf("%w: only a security officer or IT administrator places or lifts legal holds, not a %s", ErrInvalid, by.Role)
	}
	return nil
}

// PlaceHold places a legal hold; it is audited with the patient's
// pseudonym.
func (e *Engine) PlaceHold(ctx context.Context, by identity.Principal, h Hold) (Hold, error) {
	if err := mayHold(by); err != nil {
		return Hold{}, err
	}
	if err := checkText("hold reason", h.Reason, maxReason); err != nil {
		return Hold{}, err
	}
	if h.Class != "" && !classPattern.MatchString(h.Class) {
		return Hold{}, fmt.Errorf("%w: class %q: lower-case letters, digits and _", ErrInvalid, h.Class)
	}
	pseudonym := ""
	if h.PatientID != "" {
		f, err := e.cfg.Door.Facts(ctx, h.PatientID)
		if err != nil {
			return Hold{}, fmt.Errorf("place hold: %w", err)
		}
		pseudonym = f.Pseudonym
	}
	h.ID, h.PlacedBy, h.Placed = newID("hold_"), by.ID, e.cfg.Now()
	err := e.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO lifecycle_holds (id, patient_id, class, reason, placed_by, placed_at) VALUES (?, ?, ?, ?, ?, ?)`,
			h.ID, h.PatientID, h.Class, h.Reason, h.PlacedBy, h.Placed.UnixNano()); err != nil {
			return err
		}
		_, err := e.cfg.Audit.AppendTx(ctx, tx, holdEvent(by, "lifecycle.hold.place", pseudonym, h, h.Placed, h.Reason))
		return err
	})
	if err != nil {
		return Hold{}, fmt.Errorf("place hold: %w", err)
	}
	return h, nil
}

func holdEvent(by identity.Principal, action, pseudonym string, h Hold, at time.Time, reason string) audit.Event {
	scope := h.Class
	if scope == "" {
		scope = "*"
	}
	return audit.Event{Time: at, Actor: by.ID, Role: by.Role, Action: action, Purpose: PurposeOperations, Patient: pseudonym,
		Resource: "Hold/" + h.ID + "/" + scope, Outcome: audit.Success, Source: by.Source, Reason: reason}
}

// ReleaseHold lifts a hold; the data it kept becomes subject to retention
// again.
func (e *Engine) ReleaseHold(ctx context.Context, by identity.Principal, id, reason string) error {
	if err := mayHold(by); err != nil {
		return err
	}
	if err := checkText("release reason", reason, maxReason); err != nil {
		return err
	}
	now := e.cfg.Now()
	return e.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		h, err := holdByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !h.Released.IsZero() {
			return fmt.Errorf("%w: hold %s was released on %s", ErrInvalid, id, h.Released.UTC().Format(time.DateOnly))
		}
		if _, err := tx.Exec(ctx, `UPDATE lifecycle_holds SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ?`,
			now.UnixNano(), by.ID, reason, id); err != nil {
			return err
		}
		pseudonym := ""
		if h.PatientID != "" {
			pseudonym = e.cfg.Door.Pseudonym(h.PatientID)
		}
		_, err = e.cfg.Audit.AppendTx(ctx, tx, holdEvent(by, "lifecycle.hold.release", pseudonym, h, now, reason))
		return err
	})
}

// Holds lists the holds in force, or every hold when all is set.
func (e *Engine) Holds(ctx context.Context, all bool) ([]Hold, error) {
	q := `SELECT id, patient_id, class, reason, placed_by, placed_at, released_at, COALESCE(released_by, ''), COALESCE(release_reason, '') FROM lifecycle_holds`
	if !all {
		q += ` WHERE released_at IS NULL`
	}
	return queryHolds(ctx, e.cfg.DB, q+` ORDER BY placed_at, id`)
}

func holdByID(ctx context.Context, q store.Querier, id string) (Hold, error) {
	hs, err := queryHolds(ctx, q, `SELECT id, patient_id, class, reason, placed_by, placed_at, released_at, COALESCE(released_by, ''), COALESCE(release_reason, '') FROM lifecycle_holds WHERE id = ?`, id)
	if err != nil {
		return Hold{}, err
	}
	if len(hs) == 0 {
		return Hold{}, fmt.Errorf("%w: hold %s", ErrNotFound, id)
	}
	return hs[0], nil
}

func queryHolds(ctx context.Context, q store.Querier, query string, args ...any) ([]Hold, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read holds: %w", err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		var h Hold
		var placed int64
		var released *int64
		if err := rows.Scan(&h.ID, &h.PatientID, &h.Class, &h.Reason, &h.PlacedBy, &placed, &released, &h.ReleasedBy, &h.ReleaseReason); err != nil {
			return nil, err
		}
		h.Placed = time.Unix(0, placed)
		if released != nil {
			h.Released = time.Unix(0, *released)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// holdSet answers "is this covered by a hold?" for a run or an erasure.
type holdSet struct {
	all          *Hold
	classes      map[string]Hold
	patients     map[string]Hold
	patientClass map[[2]string]Hold
}

// newHoldSet gathers the holds in force and the schedule's class holds.
func newHoldSet(holds []Hold, s Schedule) holdSet {
	hs := holdSet{classes: map[string]Hold{}, patients: map[string]Hold{}, patientClass: map[[2]string]Hold{}}
	for _, r := range s.Rules {
		if r.LegalHold {
			hs.classes[r.Class] = Hold{ID: r.ID(s.Name), Class: r.Class, Reason: r.HoldReason}
		}
	}
	for _, h := range holds {
		switch {
		case h.PatientID != "" && h.Class != "":
			hs.patientClass[[2]string{h.PatientID, h.Class}] = h
		case h.PatientID != "":
			hs.patients[h.PatientID] = h
		case h.Class != "":
			hs.classes[h.Class] = h
		default:
			hs.all = &h
		}
	}
	return hs
}

// class returns the hold that keeps a whole class, if any.
func (hs holdSet) class(c string) (Hold, bool) {
	if hs.all != nil {
		return *hs.all, true
	}
	h, ok := hs.classes[c]
	return h, ok
}

// covers returns the hold that keeps a patient's records of class, if any.
func (hs holdSet) covers(patientID, class string) (Hold, bool) {
	if h, ok := hs.class(class); ok {
		return h, true
	}
	if h, ok := hs.patients[patientID]; ok {
		return h, true
	}
	h, ok := hs.patientClass[[2]string{patientID, class}]
	return h, ok
}

// patientHeld lists the patients some hold keeps (whole or in part): they
// never go whole.
func (hs holdSet) patientHeld() []string {
	var ids []string
	for id := range hs.patients {
		ids = append(ids, id)
	}
	for k := range hs.patientClass {
		ids = append(ids, k[0])
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
