package dataset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/store"
)

// Migrations create the dataset register, its members and their sealed
// lineage. Members are named by the door's pseudonym only; the lineage is
// sealed with each patient's data key, the row map and the dataset secret
// under keys derived from a KEK-wrapped system secret.
var Migrations = []store.Migration{
	{Component: "dataset", Version: 1, Name: "datasets, members and lineage", SQL: `CREATE TABLE datasets (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		purpose TEXT NOT NULL,
		classes TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL,
		created_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		completed_at BIGINT,
		spec_digest TEXT NOT NULL,
		secret BLOB NOT NULL,
		row_map BLOB,
		rows_count BIGINT NOT NULL DEFAULT 0,
		patients BIGINT NOT NULL DEFAULT 0,
		k_reached BIGINT NOT NULL DEFAULT 0,
		manifest_digest TEXT NOT NULL DEFAULT '',
		location TEXT NOT NULL DEFAULT '',
		note TEXT NOT NULL DEFAULT '');
		CREATE TABLE dataset_members (
		dataset_id TEXT NOT NULL REFERENCES datasets (id),
		patient TEXT NOT NULL,
		pseudonym_index BLOB NOT NULL,
		rows_count BIGINT NOT NULL,
		lineage BLOB NOT NULL,
		PRIMARY KEY (dataset_id, patient));
		CREATE INDEX dataset_members_patient ON dataset_members (patient);
		CREATE INDEX dataset_members_index ON dataset_members (dataset_id, pseudonym_index)`},
}

// Dataset states.
const (
	StateBuilding = "building"
	StateComplete = "complete"
	StateRefused  = "refused"
	StateFailed   = "failed"
)

// Info is a dataset as the register holds it.
type Info struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Purpose   string    `json:"purpose"`
	Classes   []string  `json:"classes,omitempty"`
	State     string    `json:"state"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Completed time.Time `json:"completed,omitzero"`
	Rows      int       `json:"rows"`
	Patients  int       `json:"patients"`
	K         int       `json:"k"`
	Location  string    `json:"location,omitempty"`
	Note      string    `json:"note,omitempty"`
	// ManifestSHA256 is the digest of the signed manifest.json.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// Stale lists members who withdrew consent or were erased since (filled
	// by List with stale set).
	Stale []StaleMember `json:"stale,omitempty"`

	specDigest string
	secret     []byte // sealed
	rowMap     []byte // sealed
}

// StaleMember is a dataset member who may no longer be in it.
type StaleMember struct {
	Patient string    `json:"patient"` // the door's pseudonym
	Reason  string    `json:"reason"`  // "erased" or "consent withdrawn"
	Since   time.Time `json:"since,omitzero"`
}

const infoColumns = `id, name, purpose, classes, state, created_by, created_at, completed_at, spec_digest, secret, row_map, rows_count, patients, k_reached, manifest_digest, location, note`

type scanner interface{ Scan(dest ...any) error }

func scanInfo(r scanner) (Info, error) {
	var in Info
	var classes string
	var created int64
	var completed *int64
	err := r.Scan(&in.ID, &in.Name, &in.Purpose, &classes, &in.State, &in.CreatedBy, &created, &completed, &in.specDigest,
		&in.secret, &in.rowMap, &in.Rows, &in.Patients, &in.K, &in.ManifestSHA256, &in.Location, &in.Note)
	if err != nil {
		return Info{}, err
	}
	if classes != "" {
		in.Classes = strings.Split(classes, ",")
	}
	in.Created = time.Unix(0, created)
	if completed != nil {
		in.Completed = time.Unix(0, *completed)
	}
	return in, nil
}

func (s *Service) insertDataset(ctx context.Context, in Info) error {
	_, err := s.cfg.DB.Exec(ctx, `INSERT INTO datasets (id, name, purpose, classes, state, created_by, created_at, spec_digest, secret, location) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		in.ID, in.Name, in.Purpose, strings.Join(in.Classes, ","), StateBuilding, in.CreatedBy, in.Created.UnixNano(), in.specDigest, in.secret, in.Location)
	if err != nil {
		return fmt.Errorf("register dataset %s: %w", in.ID, err)
	}
	return nil
}

// Get returns the registered dataset id.
func (s *Service) Get(ctx context.Context, id string) (Info, error) {
	in, err := scanInfo(s.cfg.DB.QueryRow(ctx, `SELECT `+infoColumns+` FROM datasets WHERE id = ?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Info{}, fmt.Errorf("read dataset %s: %w", id, err)
	}
	return in, nil
}

func (s *Service) listInfo(ctx context.Context, where string, args ...any) ([]Info, error) {
	rows, err := s.cfg.DB.Query(ctx, `SELECT `+infoColumns+` FROM datasets `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	defer rows.Close()
	var out []Info
	for rows.Next() {
		in, err := scanInfo(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// endDataset records a refused or failed job with its reason (no PHI).
func (s *Service) endDataset(ctx context.Context, id, state, note string) error {
	_, err := s.cfg.DB.Exec(ctx, `UPDATE datasets SET state = ?, note = ?, completed_at = ? WHERE id = ? AND state = ?`,
		state, note, s.cfg.Now().UnixNano(), id, StateBuilding)
	return err
}

// member is one patient's entry in the register.
type member struct {
	patient string // the door's pseudonym
	index   []byte // blind index of the row pseudonym
	rows    int
	lineage []byte // sealed with the patient's key
}

func insertMembers(ctx context.Context, tx *store.Tx, id string, ms []member) error {
	const perStmt = 100
	for start := 0; start < len(ms); start += perStmt {
		batch := ms[start:min(start+perStmt, len(ms))]
		args := make([]any, 0, 5*len(batch))
		for _, m := range batch {
			args = append(args, id, m.patient, m.index, m.rows, m.lineage)
		}
		q := `INSERT INTO dataset_members (dataset_id, patient, pseudonym_index, rows_count, lineage) VALUES ` + store.Placeholders(len(batch), 5)
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("record dataset members: %w", err)
		}
	}
	return nil
}

func (s *Service) members(ctx context.Context, id string) ([]string, error) {
	rows, err := s.cfg.DB.Query(ctx, `SELECT patient FROM dataset_members WHERE dataset_id = ? ORDER BY patient`, id)
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
