package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Record is one clinical record: an observation, a note, an order… Its
// code and payload are sealed; class, dates and labels are the metadata a
// policy and a retention rule need.
type Record struct {
	ID        string
	PatientID string
	Class     string
	Code      string    // e.g. a LOINC or MDC code
	Effective time.Time // when it happened (retention and search run on it)
	Created   time.Time
	CreatedBy string
	Source    string // device, staff or import that produced it (lineage)
	Labels    []string
	Payload   []byte // the clinical content (FHIR JSON or a compact form)
}

// AddRecords stores records of one patient in one transaction with one
// audit event (a device batch, an import). The records get ids.
func (d *Door) AddRecords(ctx context.Context, req Request, patientID string, recs []Record) ([]string, error) {
	res := d.AddRecordsBulk(ctx, []Batch{{Request: req, PatientID: patientID, Records: recs}})
	return res[0].IDs, res[0].Err
}

// Batch is one patient's records of one class in a bulk write.
type Batch struct {
	Request   Request
	PatientID string
	Records   []Record
}

// BatchResult is the outcome of one batch: its record ids, or why it was
// not stored (denied, destroyed, invalid — each audited like a single
// write).
type BatchResult struct {
	IDs []string
	Err error
}

// AddRecordsBulk stores the batches of many patients in one transaction:
// each batch is decided on its own and gets its own audit event, committed
// with its records, so a busy ingestion pays one commit for many patients.
// A batch that is refused does not hold up the others.
func (d *Door) AddRecordsBulk(ctx context.Context, batches []Batch) []BatchResult {
	res := make([]BatchResult, len(batches))
	type ready struct {
		i  int
		a  *access
		pk *keys.PatientKey
	}
	var ok []ready
	for i, b := range batches {
		a, pk, err := d.prepareWrite(ctx, b.Request, b.PatientID, b.Records)
		if err != nil {
			res[i].Err = err
			continue
		}
		ok = append(ok, ready{i: i, a: a, pk: pk})
	}
	if len(ok) == 0 {
		return res
	}
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		events := make([]audit.Event, len(ok))
		for j, r := range ok {
			events[j] = d.event(r.a, audit.Success, "")
		}
		if _, err := d.log.AppendTx(ctx, tx, events...); err != nil {
			return err
		}
		for _, r := range ok {
			b := batches[r.i]
			ids := make([]string, len(b.Records))
			if err := d.insertRecords(ctx, tx, r.pk, b.Request.Who.ID, b.Records, ids); err != nil {
				return err
			}
			res[r.i].IDs = ids
		}
		return nil
	})
	if err != nil {
		for _, r := range ok {
			res[r.i] = BatchResult{Err: fmt.Errorf("add records: %w", err)}
		}
	}
	return res
}

// prepareWrite checks a batch, decides it and fetches the patient's key;
// a denial or a destroyed patient is audited here.
func (d *Door) prepareWrite(ctx context.Context, req Request, patientID string, recs []Record) (*access, *keys.PatientKey, error) {
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("%w: no records to add", ErrInvalid)
	}
	class := recs[0].Class
	for _, r := range recs {
		if r.Class == "" || r.Class != class {
			return nil, nil, fmt.Errorf("%w: one batch holds records of one class", ErrInvalid)
		}
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return nil, nil, err
	}
	a := &access{req: req, action: ActionWrite, class: class, facts: facts,
		resource: fmt.Sprintf("Patient/%s/%s[%d]", facts.Pseudonym, class, len(recs))}
	if err := d.authorize(ctx, a); err != nil {
		return nil, nil, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return nil, nil, d.auditFailure(ctx, a, err)
	}
	return a, pk, nil
}

const recordCols = 11

func (d *Door) insertRecords(ctx context.Context, tx *store.Tx, pk *keys.PatientKey, by string, recs []Record, ids []string) error {
	now := d.now().UnixNano()
	const perStmt = 80
	args := make([]any, 0, perStmt*recordCols)
	for i, r := range recs {
		id := newID("rec_")
		ids[i] = id
		eff := r.Effective
		if eff.IsZero() {
			eff = d.now()
		}
		code := pk.Seal(keys.Field{Table: "phi_records", Record: id, Name: "code"}, []byte(r.Code))
		payload := pk.Seal(keys.Field{Table: "phi_records", Record: id, Name: "payload"}, r.Payload)
		args = append(args, id, pk.Patient(), r.Class, d.blindIndex("code", r.Class+"|"+r.Code), eff.UnixNano(),
			now, by, r.Source, strings.Join(r.Labels, ","), code, payload)
		if len(args) == perStmt*recordCols || i == len(recs)-1 {
			q := `INSERT INTO phi_records (id, patient_id, class, code_digest, effective_at, created_at, created_by, source, labels, code, payload) VALUES ` +
				store.Placeholders(len(args)/recordCols, recordCols)
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
			args = args[:0]
		}
	}
	return nil
}

// Filter narrows a search of a patient's records.
type Filter struct {
	Class    string
	Code     string
	From, To time.Time // effective time, [From, To)
	Limit    int
}

// Record reads one record.
func (d *Door) Record(ctx context.Context, req Request, id string) (Record, error) {
	// One query reads the sealed record with its patient's facts; nothing
	// is unsealed before the decision and the audit event.
	var patientID string
	var fs factsScan
	var raw rawRecord
	err := d.db.QueryRow(ctx, recordWithFactsQuery, id).
		Scan(append(append([]any{&patientID}, raw.targets()...), fs.targets()...)...)
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, fmt.Errorf("%w: record %s", ErrNotFound, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read record %s: %w", id, err)
	}
	facts, err := d.done(&fs, patientID)
	if err != nil {
		return Record{}, err
	}
	a := &access{req: req, action: ActionRead, class: raw.class, facts: facts, resource: raw.class + "/" + id}
	if err := d.authorize(ctx, a); err != nil {
		return Record{}, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return Record{}, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return Record{}, err
	}
	return raw.open(pk, patientID)
}

// recordWithFactsQuery reads one sealed record with its patient's facts.
// Built once: Record runs on every read, and the statement cache finds
// the prepared statement by its text.
var recordWithFactsQuery = `SELECT r.patient_id, ` + rawRecordColumns("r.") + `, ` + prefixed("p.", factsColumns) + `
		FROM phi_records r JOIN phi_patients p ON p.id = r.patient_id WHERE r.id = ?`

// prefixed puts a table alias before each of a list of columns.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, p := range parts {
		parts[i] = alias + p
	}
	return strings.Join(parts, ", ")
}

// Records searches a patient's records; one audit event covers the search.
func (d *Door) Records(ctx context.Context, req Request, patientID string, f Filter) ([]Record, error) {
	if f.Class == "" {
		return nil, fmt.Errorf("%w: a record search names a class (observation, note, …)", ErrInvalid)
	}
	return d.records(ctx, req, patientID, f, "")
}

func (d *Door) records(ctx context.Context, req Request, patientID string, f Filter, id string) ([]Record, error) {
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return nil, err
	}
	a := &access{req: req, action: ActionRead, class: f.Class, facts: facts, resource: "Patient/" + facts.Pseudonym + "/" + f.Class}
	if id != "" {
		a.resource = f.Class + "/" + id
	}
	if err := d.authorize(ctx, a); err != nil {
		return nil, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return nil, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return nil, err
	}
	return d.queryRecords(ctx, pk, patientID, f, id)
}

func (d *Door) queryRecords(ctx context.Context, pk *keys.PatientKey, patientID string, f Filter, id string) ([]Record, error) {
	q := `SELECT id, class, effective_at, created_at, created_by, source, labels, code, payload FROM phi_records WHERE patient_id = ? AND class = ?`
	args := []any{patientID, f.Class}
	if id != "" {
		q += ` AND id = ?`
		args = append(args, id)
	}
	if f.Code != "" {
		q += ` AND code_digest = ?`
		args = append(args, d.blindIndex("code", f.Class+"|"+f.Code))
	}
	if !f.From.IsZero() {
		q += ` AND effective_at >= ?`
		args = append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		q += ` AND effective_at < ?`
		args = append(args, f.To.UnixNano())
	}
	q += ` ORDER BY effective_at, id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := d.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows, pk, patientID)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(rows scanner, pk *keys.PatientKey, patientID string) (Record, error) {
	var raw rawRecord
	if err := rows.Scan(raw.targets()...); err != nil {
		return Record{}, err
	}
	return raw.open(pk, patientID)
}

// rawRecord is a phi_records row as stored: metadata and sealed values.
type rawRecord struct {
	id, class, createdBy, source, labels string
	eff, created                         int64
	code, payload                        []byte
}

func rawRecordColumns(alias string) string {
	return prefixed(alias, "id, class, effective_at, created_at, created_by, source, labels, code, payload")
}

func (r *rawRecord) targets() []any {
	return []any{&r.id, &r.class, &r.eff, &r.created, &r.createdBy, &r.source, &r.labels, &r.code, &r.payload}
}

// open unseals the record with its patient's key.
func (r *rawRecord) open(pk *keys.PatientKey, patientID string) (Record, error) {
	out := Record{ID: r.id, PatientID: patientID, Class: r.class, CreatedBy: r.createdBy, Source: r.source,
		Effective: time.Unix(0, r.eff), Created: time.Unix(0, r.created), Labels: splitList(r.labels)}
	c, err := pk.Open(keys.Field{Table: "phi_records", Record: r.id, Name: "code"}, r.code)
	if err != nil {
		return Record{}, err
	}
	out.Code = string(c)
	if out.Payload, err = pk.Open(keys.Field{Table: "phi_records", Record: r.id, Name: "payload"}, r.payload); err != nil {
		return Record{}, err
	}
	return out, nil
}
