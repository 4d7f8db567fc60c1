package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// A quarantined file that names an MRN belongs to a patient, known now or
// registered later. The item records the patient's pseudonym (never the
// MRN in the clear), so the data map lists it and erasing the patient
// destroys it: the intake is the lifecycle Source and Eraser of imaging.

var _ lifecycle.Eraser = (*Intake)(nil)

// eraser is the principal that carries out erasures and the destruction
// that follows a patient's crypto-shredding.
var eraser = identity.System("lifecycle")

// patientMatch is the patient a file belongs to, as far as is known.
type patientMatch struct {
	patientID, pseudonym string
	// unmatched: the file names an MRN that no patient has (yet).
	unmatched bool
}

// match asks the door whose MRN the item's file carries. missed says the
// door just said no one's, so it is not asked again. A refusal of the door
// is not the file's problem: the file stays unmatched and is asked about
// later (each miss is audited by the door, naming the item).
func (in *Intake) match(ctx context.Context, id, mrn string, missed bool) (patientMatch, error) {
	switch {
	case mrn == "":
		return patientMatch{}, nil
	case missed:
		return patientMatch{unmatched: true}, nil
	}
	rec, err := in.cfg.Door.MatchImaging(ctx, importRequest, mrn, "quarantine "+id+" matching its patient")
	switch {
	case err == nil:
		return patientMatch{patientID: rec.PatientID, pseudonym: rec.Pseudonym}, nil
	case errors.Is(err, records.ErrNotFound), errors.Is(err, records.ErrInvalid), errors.Is(err, records.ErrDenied):
		return patientMatch{unmatched: true}, nil
	}
	return patientMatch{}, err
}

// Tidy brings the quarantine up to date with the patient register: held
// files whose MRN now belongs to a registered patient record that
// patient's pseudonym, and the items of patients crypto-shredded since
// (by an erasure, the retention run, or the door) are destroyed with
// them. Import, the officer's list and the data map run it first; a
// server may run it on a schedule.
func (in *Intake) Tidy(ctx context.Context) error {
	if err := in.matchPending(ctx); err != nil {
		return fmt.Errorf("match quarantined files to patients: %w", err)
	}
	if err := in.followShredded(ctx); err != nil {
		return fmt.Errorf("erase quarantined files of destroyed patients: %w", err)
	}
	return nil
}

// matchPending asks the door again about every unmatched item.
func (in *Intake) matchPending(ctx context.Context) error {
	rows, err := in.cfg.DB.Query(ctx, `SELECT id, record FROM quarantine_items WHERE unmatched = 1 AND state <> ? ORDER BY held_at`, StateDeleted)
	if err != nil {
		return err
	}
	type pending struct {
		id     string
		sealed []byte
	}
	var todo []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.sealed); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range todo {
		if err := in.matchItem(ctx, p.id, p.sealed); err != nil {
			return err
		}
	}
	return nil
}

// matchItem reads the MRN from an item's sealed record and, when it now
// belongs to a patient, records the patient with an audit event.
func (in *Intake) matchItem(ctx context.Context, id string, sealed []byte) error {
	dk, err := in.cfg.Keys.ForOwner(ctx, in.cfg.DB, itemOwner(id))
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", id, err)
	}
	plain, err := dk.Open(recordField(id), sealed)
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", id, err)
	}
	var rec quarantineRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		return fmt.Errorf("quarantine %s: %w", id, err)
	}
	m, err := in.match(ctx, id, rec.MRN, false)
	if err != nil || m.pseudonym == "" {
		return err
	}
	return in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE quarantine_items SET patient = ?, patient_id = ?, unmatched = 0 WHERE id = ? AND unmatched = 1`, m.pseudonym, m.patientID, id)
		if n, _ := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = in.cfg.Audit.AppendTx(ctx, tx, audit.Event{Time: in.now(), Actor: importer.ID, Role: importer.Role, Action: "quarantine.match",
			Purpose: "TREAT", Patient: m.pseudonym, Resource: "Quarantine/" + id, Outcome: audit.Success,
			Reason: "the file's Patient ID now belongs to a registered patient"})
		return err
	})
}

// followShredded erases the items of every patient destroyed since they
// were matched.
func (in *Intake) followShredded(ctx context.Context) error {
	ids, err := in.itemPatients(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		facts, err := in.cfg.Door.Facts(ctx, id)
		switch {
		case errors.Is(err, records.ErrNotFound):
			continue // a patient the door cannot find: the officer decides
		case err != nil:
			return err
		case !facts.Destroyed:
			continue
		}
		h, err := in.cfg.Door.Inventory(ctx, id)
		if err != nil {
			return err
		}
		basis := "the patient's data was destroyed"
		if h.Destroyed != nil {
			basis = h.Destroyed.Basis
		}
		if _, err := in.erase(ctx, id, basis); err != nil {
			return err
		}
	}
	return nil
}

// itemPatients lists the patients of items not yet destroyed.
func (in *Intake) itemPatients(ctx context.Context) ([]string, error) {
	rows, err := in.cfg.DB.Query(ctx, `SELECT DISTINCT patient_id FROM quarantine_items WHERE patient_id <> '' AND state <> ?`, StateDeleted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Kind is lifecycle.KindImaging.
func (in *Intake) Kind() string { return lifecycle.KindImaging }

// Locations lists the patient's files in quarantine for the data map:
// held, released (the sealed copy kept), deleted or erased (their keys
// destroyed), and the copies handed to an officer, which are outside
// medsec until someone destroys them.
func (in *Intake) Locations(ctx context.Context, s lifecycle.Subject) ([]lifecycle.Location, error) {
	if err := in.Tidy(ctx); err != nil {
		return nil, err
	}
	rows, err := in.cfg.DB.Query(ctx, `SELECT state, COUNT(*), MIN(held_at), MAX(COALESCE(decided_at, held_at)) FROM quarantine_items WHERE patient_id = ? GROUP BY state ORDER BY state`, s.PatientID)
	if err != nil {
		return nil, fmt.Errorf("trace quarantine: %w", err)
	}
	var out []lifecycle.Location
	for rows.Next() {
		var state string
		var n int
		var first, last int64
		if err := rows.Scan(&state, &n, &first, &last); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, stateLocation(state, n, time.Unix(0, first), time.Unix(0, last)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	handed, err := in.handedOut(ctx, s.PatientID)
	return append(out, handed...), err
}

func stateLocation(state string, n int, first, last time.Time) lifecycle.Location {
	l := lifecycle.Location{Kind: lifecycle.KindImaging, Holder: "hospital", Count: n, Since: first}
	switch state {
	case StateHeld:
		l.Place, l.Stage = "quarantine: held files", lifecycle.StageCollection
		l.State = "sealed, a key per file; waiting for the security officer to release or delete them"
	case StateReleased:
		l.Place, l.Stage = "quarantine: released files (sealed copy kept)", lifecycle.StageStorage
		l.State = "sealed, a key per file; kept until the security officer deletes them"
	default:
		l.Place, l.Stage, l.Until = "quarantine: deleted files", lifecycle.StageDestruction, last
		l.State = "destroyed: each file's key destroyed (crypto-shredded); backups made before stay readable until medsec keys rotate retires the key-encryption key"
	}
	return l
}

// handedOut lists the copies officers took of the patient's files.
func (in *Intake) handedOut(ctx context.Context, patientID string) ([]lifecycle.Location, error) {
	rows, err := in.cfg.DB.Query(ctx, `SELECT handed_to, COUNT(*), MIN(handed_at) FROM quarantine_items WHERE patient_id = ? AND handed_to <> '' GROUP BY handed_to ORDER BY handed_to`, patientID)
	if err != nil {
		return nil, fmt.Errorf("trace quarantine copies: %w", err)
	}
	defer rows.Close()
	var out []lifecycle.Location
	for rows.Next() {
		var who string
		var n int
		var at int64
		if err := rows.Scan(&who, &n, &at); err != nil {
			return nil, err
		}
		out = append(out, lifecycle.Location{Kind: lifecycle.KindImaging, Place: "quarantined file handed out for forensics", Holder: who, Count: n,
			Stage: lifecycle.StageProvision, Since: time.Unix(0, at), State: "a copy outside medsec, with the security officer: destroy it"})
	}
	return out, rows.Err()
}

// Erase destroys the keys of the patient's quarantined files (held or
// released), each with an audit event naming the patient's pseudonym, and
// returns the copies officers took, which medsec cannot reach.
func (in *Intake) Erase(ctx context.Context, s lifecycle.Subject, basis string) ([]lifecycle.Location, error) {
	if _, err := in.erase(ctx, s.PatientID, basis); err != nil {
		return nil, err
	}
	return in.handedOut(ctx, s.PatientID)
}

// erase destroys the patient's items not yet destroyed, in one
// transaction; it returns how many.
func (in *Intake) erase(ctx context.Context, patientID, basis string) (int, error) {
	n := 0
	err := in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		ids, pseudonym, err := livingItems(ctx, tx, patientID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := in.eraseItem(ctx, tx, id, pseudonym, basis); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("erase quarantined files: %w", err)
	}
	if n > 0 {
		// Freed pages were zeroed (secure_delete); push them out of the WAL.
		if err := in.cfg.DB.Compact(ctx); err != nil {
			return n, err
		}
	}
	return n, nil
}

func livingItems(ctx context.Context, tx *store.Tx, patientID string) ([]string, string, error) {
	rows, err := tx.Query(ctx, `SELECT id, patient FROM quarantine_items WHERE patient_id = ? AND state <> ? ORDER BY id`, patientID, StateDeleted)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var ids []string
	var pseudonym string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &pseudonym); err != nil {
			return nil, "", err
		}
		ids = append(ids, id)
	}
	return ids, pseudonym, rows.Err()
}

// eraseItem destroys one item; one another transaction destroyed first
// is left alone.
func (in *Intake) eraseItem(ctx context.Context, tx *store.Tx, id, pseudonym, basis string) error {
	res, err := tx.Exec(ctx, `UPDATE quarantine_items SET state = ?, decided_at = ?, decided_by = ?, decision = ?, content = NULL WHERE id = ? AND state <> ?`,
		StateDeleted, in.now().UnixNano(), eraser.ID, "erased with the patient: "+basis, id, StateDeleted)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if err := in.cfg.Keys.DestroyKey(ctx, tx, itemOwner(id), eraser.ID, basis); err != nil {
		return err
	}
	_, err = in.cfg.Audit.AppendTx(ctx, tx, audit.Event{Time: in.now(), Actor: eraser.ID, Role: eraser.Role, Action: "quarantine.erase",
		Purpose: "HOPERAT", Patient: pseudonym, Resource: "Quarantine/" + id, Outcome: audit.Success,
		Reason: "crypto-shredded with the patient: " + basis})
	return err
}
