package records

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// Care relationships: the encounter (department, ward, in progress or
// not), the attending physician and the care team. The policy weighs them
// on every decision, so changing them is itself a decided, audited write
// (class encounter): whoever may record the patient's encounters may move
// the patient or change who treats them.

// Admission starts an encounter: the patient is treated in Department, on
// Ward, by Attending with CareTeam. Empty Attending or CareTeam keep the
// ones the patient has.
type Admission struct {
	Department string
	Ward       string
	Attending  string
	CareTeam   []string
	// Code and Payload, if given, are stored as the encounter record (FHIR
	// Encounter JSON) in the same transaction.
	Code    string
	Payload []byte
}

// Admit starts an encounter and returns the id of the encounter record
// ("" when no payload was given).
func (d *Door) Admit(ctx context.Context, req Request, patientID string, adm Admission) (string, error) {
	if strings.TrimSpace(adm.Department) == "" {
		return "", fmt.Errorf("%w: an admission names a department", ErrInvalid)
	}
	if err := checkCareNames(append([]string{adm.Department, adm.Ward, adm.Attending}, adm.CareTeam...)); err != nil {
		return "", err
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return "", err
	}
	next := *facts
	next.Department, next.Ward, next.ActiveEncounter = adm.Department, adm.Ward, true
	if adm.Attending != "" {
		next.Attending = adm.Attending
	}
	if adm.CareTeam != nil {
		next.CareTeam = uniqueSorted(adm.CareTeam)
	}
	var rec []Record
	if len(adm.Payload) > 0 {
		rec = []Record{{Class: ClassEncounter, Code: adm.Code, Payload: adm.Payload, Source: "staff:" + req.Who.Username}}
	}
	why := fmt.Sprintf("admitted to %s ward %q, attending %s, care team [%s]", next.Department, next.Ward, next.Attending, strings.Join(next.CareTeam, ","))
	return d.changeCare(ctx, req, facts, &next, why, rec)
}

// Discharge ends the active encounter: the patient leaves the ward and the
// department's relationship ends; attending and care team stay for the
// follow-up.
func (d *Door) Discharge(ctx context.Context, req Request, patientID string) error {
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return err
	}
	next := *facts
	next.Ward, next.ActiveEncounter = "", false
	_, err = d.changeCare(ctx, req, facts, &next, "discharged from "+facts.Department, nil)
	return err
}

// SetCareTeam names the attending physician and the care team (staff ids).
func (d *Door) SetCareTeam(ctx context.Context, req Request, patientID, attending string, team []string) error {
	if err := checkCareNames(append([]string{attending}, team...)); err != nil {
		return err
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return err
	}
	next := *facts
	next.Attending, next.CareTeam = attending, uniqueSorted(team)
	why := fmt.Sprintf("attending %s, care team [%s] (was %s, [%s])", attending, strings.Join(next.CareTeam, ","),
		facts.Attending, strings.Join(facts.CareTeam, ","))
	_, err = d.changeCare(ctx, req, facts, &next, why, nil)
	return err
}

// checkCareNames refuses ids and names that would break the stored lists.
func checkCareNames(names []string) error {
	for _, n := range names {
		if len(n) > 100 || strings.ContainsAny(n, ",\x00\n") {
			return fmt.Errorf("%w: department, ward and staff ids are at most 100 bytes without commas or control characters", ErrInvalid)
		}
	}
	return nil
}

// changeCare decides the change against the relationship the patient has
// now, then writes the new one, any encounter record and the audit event in
// one transaction.
func (d *Door) changeCare(ctx context.Context, req Request, facts, next *PatientFacts, why string, recs []Record) (string, error) {
	if facts.Destroyed {
		return "", fmt.Errorf("%w: patient %s was destroyed", ErrNotFound, facts.Pseudonym)
	}
	a := &access{req: req, action: ActionWrite, class: ClassEncounter, facts: facts, resource: "Patient/" + facts.Pseudonym + "/care"}
	if err := d.authorize(ctx, a); err != nil {
		return "", err
	}
	ids := make([]string, len(recs))
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := d.log.AppendTx(ctx, tx, d.event(a, audit.Success, why)); err != nil {
			return err
		}
		if len(recs) > 0 {
			pk, err := d.keys.ForPatient(ctx, tx, facts.ID)
			if err != nil {
				return err
			}
			if err := d.insertRecords(ctx, tx, pk, req.Who.ID, recs, ids); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE phi_patients SET department = ?, ward = ?, attending = ?, care_team = ?, active_encounter = ? WHERE id = ?`,
			next.Department, next.Ward, next.Attending, strings.Join(next.CareTeam, ","), boolInt(next.ActiveEncounter), facts.ID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("change care of %s: %w", facts.Pseudonym, err)
	}
	if len(ids) > 0 {
		return ids[0], nil
	}
	return "", nil
}

// CareRelation says how a member of staff relates to a patient, for
// people reading a decision ("attending", "care-team", "ward", "department",
// or "" for none).
func CareRelation(f *PatientFacts, staffID string, wards []string, department string) string {
	switch {
	case f.Attending != "" && f.Attending == staffID:
		return "attending"
	case slices.Contains(f.CareTeam, staffID):
		return "care-team"
	case f.Ward != "" && slices.Contains(wards, f.Ward):
		return "ward"
	case f.ActiveEncounter && f.Department != "" && f.Department == department:
		return "department"
	}
	return ""
}
