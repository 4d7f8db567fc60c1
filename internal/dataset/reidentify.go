package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Target names one row of a dataset: by the pseudonym it carries, or by
// its position in the data file (0 is the first row).
type Target struct {
	Pseudonym string
	Row       int
	ByRow     bool
}

// Reidentified says who a dataset row is and where it came from.
type Reidentified struct {
	Dataset   string   `json:"dataset"`
	Patient   string   `json:"patient"` // the door's pseudonym
	PatientID string   `json:"patient_id"`
	Rows      []int    `json:"rows"`    // the patient's rows, 0-based
	Records   []string `json:"records"` // their source record ids
}

// Reidentify reverses a dataset's pseudonymization for one row: only the
// security officer may (a refusal is audited), and the patient's sealed
// lineage opens only through the door's decided, audited read. An erased
// patient's lineage was shredded with them (keys.ErrDestroyed).
func (s *Service) Reidentify(ctx context.Context, req records.Request, datasetID string, t Target, reason string) (*Reidentified, error) {
	if req.Who.Role != identity.RoleSecurityOfficer {
		return nil, s.refuseReidentify(ctx, req, datasetID)
	}
	info, err := s.Get(ctx, datasetID)
	if err != nil {
		return nil, err
	}
	if info.State != StateComplete {
		return nil, fmt.Errorf("dataset %s is %s, not complete: %w", info.ID, info.State, ErrNotFound)
	}
	pseudonym, sealed, err := s.findMember(ctx, info, t)
	if err != nil {
		return nil, err
	}
	pid, err := s.cfg.Door.ResolvePseudonym(ctx, pseudonym)
	if err != nil {
		return nil, err
	}
	raw, err := s.cfg.Door.OpenLineage(ctx, req, pid, info.ID, sealed, reason)
	if err != nil {
		return nil, err
	}
	var l lineage
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("lineage of %s in %s: %w", pseudonym, info.ID, err)
	}
	out := &Reidentified{Dataset: info.ID, Patient: pseudonym, PatientID: l.Patient}
	for _, r := range l.Rows {
		out.Rows = append(out.Rows, r.Row)
		out.Records = append(out.Records, r.Records...)
	}
	return out, nil
}

func (s *Service) refuseReidentify(ctx context.Context, req records.Request, id string) error {
	ev := s.event(req.Who.ID, req.Who.Role, "dataset.reidentify", req.Purpose, id, audit.Denied,
		"only the security officer may re-identify a dataset row")
	if _, err := s.cfg.Audit.Append(ctx, ev); err != nil {
		return errors.Join(ErrDenied, err)
	}
	return fmt.Errorf("%w: only the security officer may re-identify a dataset row", ErrDenied)
}

// findMember returns the door pseudonym and sealed lineage of the member
// the target names.
func (s *Service) findMember(ctx context.Context, info Info, t Target) (string, []byte, error) {
	if t.ByRow {
		p, err := s.rowPatient(info, t.Row)
		if err != nil {
			return "", nil, err
		}
		return s.memberLineage(ctx, info.ID, `patient = ?`, p)
	}
	secret, err := s.openSecret(info)
	if err != nil {
		return "", nil, err
	}
	idx := mac(derive(secret, keyIndex), strings.TrimSpace(t.Pseudonym))
	return s.memberLineage(ctx, info.ID, `pseudonym_index = ?`, idx)
}

func (s *Service) rowPatient(info Info, row int) (string, error) {
	raw, err := open(derive(s.secretsKey, keyRowMap), "rowmap "+info.ID, info.rowMap)
	if err != nil {
		return "", fmt.Errorf("row map of %s: %w", info.ID, err)
	}
	var rows []string
	if err := json.Unmarshal(raw, &rows); err != nil {
		return "", fmt.Errorf("row map of %s: %w", info.ID, err)
	}
	if row < 0 || row >= len(rows) {
		return "", fmt.Errorf("%w: dataset %s has rows 0 to %d, not %d", ErrNotFound, info.ID, len(rows)-1, row)
	}
	return rows[row], nil
}

func (s *Service) memberLineage(ctx context.Context, id, where string, arg any) (string, []byte, error) {
	var p string
	var sealed []byte
	err := s.cfg.DB.QueryRow(ctx, `SELECT patient, lineage FROM dataset_members WHERE dataset_id = ? AND `+where, id, arg).Scan(&p, &sealed)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, fmt.Errorf("%w: no row of dataset %s carries that pseudonym", ErrNotFound, id)
	}
	if err != nil {
		return "", nil, fmt.Errorf("read member of %s: %w", id, err)
	}
	return p, sealed, nil
}
