package audit

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medsec/medsec/internal/store"
)

// The patient index: one row (chain, block, patient, idx) for every event
// that names a patient, so a patient's access history reads that patient's
// events and not the whole log. It is derived data, filled off the append
// path: IndexPatients reads the events past the chain's watermark
// (audit_patient_marks), writes their rows and moves the watermark in one
// transaction. The Log runs it in the background after each checkpoint,
// and ScanPatient runs it before it reads, so a history is never missing
// the newest events. It is a hint: ScanPatient keeps an event only if its
// leaf names the patient, and Verify with Index set checks the rows below
// the watermark against the events.
//
// The migration backfills it from the leaves in one INSERT … SELECT and
// sets the watermark past the newest event; a leaf that is not JSON (only
// a tampered one) gets no row, so the upgrade cannot be stopped by it, and
// Verify reports the event.

// patientBlockBits groups the index by blocks of 256 events: rows are
// keyed (chain, block, patient, idx), so a catch-up writes into the few
// pages of the newest blocks instead of one page per patient, and a
// patient's history seeks once per block. Fixed: the migration's SQL
// writes the same shift.
const patientBlockBits = 8

const patientIndexSQLite = `CREATE TABLE audit_patients (
		chain TEXT NOT NULL,
		block BIGINT NOT NULL,
		patient TEXT NOT NULL,
		idx BIGINT NOT NULL,
		PRIMARY KEY (chain, block, patient, idx)) WITHOUT ROWID;
		CREATE TABLE audit_patient_marks (
		chain TEXT PRIMARY KEY,
		indexed_up_to BIGINT NOT NULL);
		INSERT INTO audit_patients (chain, block, patient, idx)
		SELECT chain, idx >> 8, patient, idx FROM (
			SELECT chain, idx, CASE WHEN json_valid(leaf) THEN json_extract(leaf, '$.patient') END AS patient
			FROM (SELECT chain, idx, CAST(event AS TEXT) AS leaf FROM audit_events))
		WHERE typeof(patient) = 'text' AND patient <> ''
		ORDER BY chain, idx >> 8, patient, idx;
		INSERT INTO audit_patient_marks (chain, indexed_up_to)
		SELECT chain, MAX(idx) + 1 FROM audit_events GROUP BY chain`

// On PostgreSQL the leaf is read as json (not jsonb, which refuses the
// \u0000 a reason may hold); the helper turns a leaf that is not UTF-8
// JSON into NULL and is dropped again.
const patientIndexPostgres = `CREATE TABLE audit_patients (
		chain TEXT NOT NULL,
		block BIGINT NOT NULL,
		patient TEXT NOT NULL,
		idx BIGINT NOT NULL,
		PRIMARY KEY (chain, block, patient, idx));
		CREATE TABLE audit_patient_marks (
		chain TEXT PRIMARY KEY,
		indexed_up_to BIGINT NOT NULL);
		CREATE FUNCTION medsec_leaf_patient(leaf BYTEA) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$ DECLARE p json; BEGIN p := convert_from(leaf, 'UTF8')::json -> 'patient'; IF json_typeof(p) = 'string' THEN RETURN p #>> '{}'; END IF; RETURN NULL; EXCEPTION WHEN others THEN RETURN NULL; END $$;
		INSERT INTO audit_patients (chain, block, patient, idx)
		SELECT chain, idx >> 8, patient, idx FROM (SELECT chain, idx, medsec_leaf_patient(event) AS patient FROM audit_events) leaves
		WHERE patient <> '';
		DROP FUNCTION medsec_leaf_patient(BYTEA);
		INSERT INTO audit_patient_marks (chain, indexed_up_to)
		SELECT chain, MAX(idx) + 1 FROM audit_events GROUP BY chain`

// indexChunk is how many events one catch-up transaction indexes, so the
// writer's lock is held for milliseconds, not for a whole backlog.
const indexChunk = 4096

// IndexPatients brings chain's patient index up to its head: it reads the
// events past the watermark, a chunk at a time outside any transaction,
// and writes each chunk's rows with the watermark in one transaction that
// first moves the watermark from where the chunk began (so two catch-ups
// racing write each row once). It returns the events indexed.
func IndexPatients(ctx context.Context, db *store.DB, chain string) (int, error) {
	done := 0
	for {
		mark, head, err := indexLag(ctx, db, chain)
		if err != nil || mark >= head {
			return done, err
		}
		end := min(head, mark+indexChunk)
		patients, err := readPatients(ctx, db, chain, mark, end)
		if err != nil {
			return done, err
		}
		if err := storeChunk(ctx, db, chain, mark, end, patients); err != nil {
			return done, fmt.Errorf("index audit events by patient: %w", err)
		}
		done += int(end - mark)
	}
}

// indexLag reads chain's watermark and head.
func indexLag(ctx context.Context, db *store.DB, chain string) (mark, head int64, err error) {
	err = db.QueryRow(ctx, `SELECT COALESCE((SELECT indexed_up_to FROM audit_patient_marks WHERE chain = ?), 0),
		COALESCE((SELECT size FROM audit_heads WHERE chain = ?), 0)`, chain, chain).Scan(&mark, &head)
	if err != nil {
		return 0, 0, fmt.Errorf("read audit patient index watermark: %w", err)
	}
	return mark, head, nil
}

// readPatients returns the pseudonym ("" for none) of events [from, to).
// A leaf that is not JSON (only a tampered one) gets no row, as in the
// migration's backfill, so it cannot stop the index; Verify reports it.
func readPatients(ctx context.Context, db *store.DB, chain string, from, to int64) ([]string, error) {
	patients := make([]string, to-from)
	rows, err := db.Query(ctx, `SELECT idx, event FROM audit_events WHERE chain = ? AND idx >= ? AND idx < ? ORDER BY idx`, chain, from, to)
	if err != nil {
		return nil, fmt.Errorf("read audit events to index: %w", err)
	}
	defer rows.Close()
	var idx int64
	var raw sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&idx, &raw); err != nil {
			return nil, fmt.Errorf("read audit events to index: %w", err)
		}
		if idx >= from && idx < to {
			patients[idx-from] = leafPatient(raw)
		}
	}
	return patients, rows.Err()
}

// leafPatient is the pseudonym a leaf names, or "". A leaf as medsec
// writes it has its fields in a fixed order, the patient before the
// outcome and both before any nested object, and no unescaped quote inside
// a string, so the first ,"outcome":" ends the fields that may name the
// patient; a pseudonym with an escape, or a leaf of another shape, is
// decoded in full.
func leafPatient(raw []byte) string {
	if head, _, ok := bytes.Cut(raw, []byte(`,"outcome":"`)); ok {
		_, v, found := bytes.Cut(head, []byte(`,"patient":"`))
		if !found {
			return ""
		}
		if end := bytes.IndexByte(v, '"'); end >= 0 && bytes.IndexByte(v[:end], '\\') < 0 && utf8.Valid(v[:end]) {
			return string(v[:end])
		}
	}
	var leaf struct {
		Patient string `json:"patient"`
	}
	if json.Unmarshal(raw, &leaf) != nil {
		return ""
	}
	return leaf.Patient
}

// storeChunk writes the rows of events [from, to) and moves the watermark
// from from to to; when another catch-up moved it first, it writes nothing.
func storeChunk(ctx context.Context, db *store.DB, chain string, from, to int64, patients []string) error {
	return db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if from == 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO audit_patient_marks (chain, indexed_up_to) VALUES (?, 0) ON CONFLICT (chain) DO NOTHING`, chain); err != nil {
				return err
			}
		}
		res, err := tx.Exec(ctx, `UPDATE audit_patient_marks SET indexed_up_to = ? WHERE chain = ? AND indexed_up_to = ?`, to, chain, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err // moved by another catch-up: its rows are written
		}
		return writePatientIndex(ctx, tx, chain, uint64(from), patients)
	})
}

// writePatientIndex writes the index rows of the events first,
// first+1, … naming patients[i] ("" for none), in key order, so the b-tree
// takes them as runs instead of scattered inserts.
func writePatientIndex(ctx context.Context, tx *store.Tx, chain any, first uint64, patients []string) error {
	order := make([]int, 0, len(patients))
	for i, p := range patients {
		if p != "" {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ba, bb := (first+uint64(a))>>patientBlockBits, (first+uint64(b))>>patientBlockBits
		if c := cmp.Compare(ba, bb); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(patients[a], patients[b]), cmp.Compare(a, b))
	})
	w := newRowWriter(tx, insertPatientRows, 4, len(order))
	for _, i := range order {
		idx := int64(first) + int64(i)
		if err := w.add(ctx, chain, idx>>patientBlockBits, patients[i], idx); err != nil {
			return err
		}
	}
	return w.flush(ctx)
}

// insertPatientRows is the INSERT of n index rows.
func insertPatientRows(n int) string {
	if n == rowsPerInsert {
		return fullPatientInsert
	}
	return `INSERT INTO audit_patients (chain, block, patient, idx) VALUES ` + store.Placeholders(n, 4)
}

var fullPatientInsert = `INSERT INTO audit_patients (chain, block, patient, idx) VALUES ` + store.Placeholders(rowsPerInsert, 4)

const rowsPerInsert = 200

// rowWriter writes rows with multi-row INSERTs of up to rowsPerInsert rows;
// when a batch holds several full statements, the full one is parsed once.
// Arguments before the first row (fixed) are bound with every statement.
type rowWriter struct {
	tx     *store.Tx
	insert func(rows int) string
	cols   int  // arguments a row
	fixed  int  // arguments before the rows
	many   bool // expect several full statements: prepare the full one
	full   *store.TxStmt
	args   []any
}

// newRowWriter writes rows of cols arguments each, about rows of them,
// after the arguments fixed.
func newRowWriter(tx *store.Tx, insert func(rows int) string, cols, rows int, fixed ...any) *rowWriter {
	args := make([]any, 0, len(fixed)+cols*min(rows, rowsPerInsert))
	return &rowWriter{tx: tx, insert: insert, cols: cols, fixed: len(fixed), many: rows >= 2*rowsPerInsert,
		args: append(args, fixed...)}
}

// add queues one row and writes a full statement's worth.
func (w *rowWriter) add(ctx context.Context, row ...any) error {
	w.args = append(w.args, row...)
	if len(w.args)-w.fixed < w.cols*rowsPerInsert {
		return nil
	}
	return w.flush(ctx)
}

// flush writes the queued rows.
func (w *rowWriter) flush(ctx context.Context) error {
	n := (len(w.args) - w.fixed) / w.cols
	if n == 0 {
		return nil
	}
	var err error
	if n == rowsPerInsert && w.many {
		if w.full == nil {
			if w.full, err = w.tx.Prepare(ctx, w.insert(n)); err != nil {
				return err
			}
		}
		_, err = w.full.Exec(ctx, w.args...)
	} else {
		_, err = w.tx.Exec(ctx, w.insert(n), w.args...)
	}
	w.args = w.args[:w.fixed]
	return err
}

// PatientQuery selects one patient's events for ScanPatient.
type PatientQuery struct {
	Pseudonym string
	// From and To bound the event time, [From, To); zero is unbounded.
	From, To time.Time
	// Limit keeps the newest Limit matching events; 0 keeps them all.
	Limit int
	// Match, when set, must also accept the event.
	Match func(Event) bool
}

func (q *PatientQuery) keeps(e Event) bool {
	switch {
	case e.Patient != q.Pseudonym:
		return false // the index row points at another patient's event
	case !q.From.IsZero() && e.Time.Before(q.From):
		return false
	case !q.To.IsZero() && !e.Time.Before(q.To):
		return false
	}
	return q.Match == nil || q.Match(e)
}

// ScanPatient calls fn, oldest first, for the newest q.Limit events of
// chain that name q.Pseudonym and match q: the same events a scan of the
// whole log keeps. It first brings the index up to the head
// (IndexPatients), then reads only the events the index points at, newest
// first, until it has q.Limit of them.
// Each is decoded and kept only if its leaf names the pseudonym, so a wrong
// index row never shows another patient's event; a missing row hides its
// event, which Verify with Index set reports.
func ScanPatient(ctx context.Context, db *store.DB, chain string, q PatientQuery, fn func(Event) error) error {
	if q.Pseudonym == "" {
		return fmt.Errorf("scan a patient's audit events: no pseudonym given")
	}
	if _, err := IndexPatients(ctx, db, chain); err != nil {
		return err
	}
	var kept []Event
	err := pagePatient(ctx, db, chain, q.Pseudonym, func(e Event) bool {
		if q.keeps(e) {
			kept = append(kept, e)
		}
		return q.Limit <= 0 || len(kept) < q.Limit
	})
	if err != nil {
		return err
	}
	for i := len(kept) - 1; i >= 0; i-- {
		if err := fn(kept[i]); err != nil {
			return err
		}
	}
	return nil
}

// A history reads the newest blocks first, in groups of blocks that grow
// from minBlockGroup to maxBlockGroup (one seek per block), and at most
// patientPage index rows a query.
const (
	minBlockGroup = 4
	maxBlockGroup = 256
	patientPage   = 512
)

// patientPageQuery reads up to patientPage of a patient's index rows below
// an index in a group of blocks, newest first, with their events. The group
// is always maxBlockGroup values (-1 pads), so the text is prepared once.
var patientPageQuery = `SELECT p.idx, e.event FROM (SELECT idx FROM audit_patients
	WHERE chain = ? AND patient = ? AND idx < ? AND block IN (` + strings.TrimSuffix(strings.Repeat("?,", maxBlockGroup), ",") + `)
	ORDER BY idx DESC LIMIT ` + strconv.Itoa(patientPage) + `) p
	LEFT JOIN audit_events e ON e.chain = ? AND e.idx = p.idx ORDER BY p.idx DESC`

// pagePatient calls more with the patient's indexed events, newest first,
// until it returns false or the index has no more rows.
func pagePatient(ctx context.Context, db *store.DB, chain, pseudonym string, more func(Event) bool) error {
	var top sql.NullInt64
	if err := db.QueryRow(ctx, `SELECT MAX(block) FROM audit_patients WHERE chain = ?`, chain).Scan(&top); err != nil {
		return fmt.Errorf("read audit patient index: %w", err)
	}
	before := int64(math.MaxInt64)
	group := int64(minBlockGroup)
	for hi := top.Int64; top.Valid && hi >= 0; {
		lo := max(hi-group+1, 0)
		n, done, err := readPatientPage(ctx, db, chain, pseudonym, lo, hi, &before, more)
		if err != nil || done {
			return err
		}
		if n < patientPage { // the group is read: go to older blocks
			hi, group = lo-1, min(4*group, maxBlockGroup)
		}
	}
	return nil
}

// readPatientPage reads index rows of blocks [lo, hi] below *before and
// moves *before past them. It reports the rows read and whether more said
// stop.
func readPatientPage(ctx context.Context, db *store.DB, chain, pseudonym string, lo, hi int64, before *int64, more func(Event) bool) (int, bool, error) {
	args := make([]any, 0, 4+maxBlockGroup)
	args = append(args, chain, pseudonym, *before)
	for i := range int64(maxBlockGroup) {
		b := hi - i
		if b < lo {
			b = -1 // padding: no block
		}
		args = append(args, b)
	}
	rows, err := db.Query(ctx, patientPageQuery, append(args, chain)...)
	if err != nil {
		return 0, false, fmt.Errorf("read audit events of a patient: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(before, &raw); err != nil {
			return n, false, fmt.Errorf("read audit events of a patient: %w", err)
		}
		n++
		if raw == nil {
			continue // the row points at no event; Verify with Index reports it
		}
		e, err := DecodeLeaf(raw)
		if err != nil {
			return n, false, fmt.Errorf("event %d: %w", *before, err)
		}
		if !more(e) {
			return n, true, nil
		}
	}
	return n, false, rows.Err()
}

// checkIndex compares the patient index with the events below its
// watermark indexed (read before the events) in one ordered pass over
// both: every event that names a patient must have exactly its row, and no
// row may point at another or a missing event. Events past the watermark
// have no rows yet. It marks res with the first mismatch.
func (vf *Verifier) checkIndex(ctx context.Context, res *Verification, indexed int64) error {
	if indexed > int64(res.Events) {
		return res.mark(int64(res.Events), fmt.Sprintf("the patient index says %d events are indexed but %d are stored", indexed, res.Events))
	}
	end := indexed
	rows, err := vf.DB.Query(ctx, `SELECT block, idx, patient FROM audit_patients WHERE chain = ? AND idx < ? ORDER BY block, idx, patient`, vf.Chain, end)
	if err != nil {
		return fmt.Errorf("read audit patient index: %w", err)
	}
	defer rows.Close()
	ix := &indexCursor{rows: rows}
	ix.next()
	err = scanPatients(ctx, vf.DB, vf.Chain, end, func(idx int64, patient string) error {
		return ix.match(res, idx, patient)
	})
	if err != nil {
		return err
	}
	if ix.err != nil {
		return fmt.Errorf("read audit patient index: %w", ix.err)
	}
	if ix.ok {
		return res.mark(ix.idx, fmt.Sprintf("an index row names patient %s for event %d, which does not exist", ix.patient, ix.idx))
	}
	return vf.checkOrphans(ctx, res, end)
}

// checkOrphans looks for index rows at or after end (appended since the
// events were read) that point at no event. The join reads both tables
// in one snapshot, and an event commits with its row.
func (vf *Verifier) checkOrphans(ctx context.Context, res *Verification, end int64) error {
	var idx int64
	var patient string
	err := vf.DB.QueryRow(ctx, `SELECT p.idx, p.patient FROM audit_patients p
		LEFT JOIN audit_events e ON e.chain = p.chain AND e.idx = p.idx
		WHERE p.chain = ? AND p.idx >= ? AND e.idx IS NULL ORDER BY p.idx LIMIT 1`, vf.Chain, end).Scan(&idx, &patient)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("read audit patient index: %w", err)
	}
	return res.mark(idx, fmt.Sprintf("an index row names patient %s for event %d, which does not exist", patient, idx))
}

// scanPatients calls fn with the index and pseudonym ("" for none) of each
// event below end, in order.
func scanPatients(ctx context.Context, db *store.DB, chain string, end int64, fn func(int64, string) error) error {
	rows, err := db.Query(ctx, `SELECT idx, event FROM audit_events WHERE chain = ? AND idx < ? ORDER BY idx`, chain, end)
	if err != nil {
		return fmt.Errorf("read audit events: %w", err)
	}
	defer rows.Close()
	var idx int64
	var raw sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&idx, &raw); err != nil {
			return fmt.Errorf("read audit events: %w", err)
		}
		var leaf struct {
			Patient string `json:"patient"`
		}
		if err := json.Unmarshal(raw, &leaf); err != nil {
			return fmt.Errorf("event %d: decode audit event: %w (%w)", idx, err, ErrTampered)
		}
		if err := fn(idx, leaf.Patient); err != nil {
			return err
		}
	}
	return rows.Err()
}

// indexCursor walks the index rows in event order.
type indexCursor struct {
	rows    *sql.Rows
	ok      bool // block, idx and patient hold the current row
	block   int64
	idx     int64
	patient string
	err     error
}

func (c *indexCursor) next() {
	c.ok = c.rows.Next()
	if c.ok {
		c.err = c.rows.Scan(&c.block, &c.idx, &c.patient)
		c.ok = c.err == nil
		return
	}
	c.err = c.rows.Err()
}

// match consumes the index rows of event idx, which names patient, and
// marks res at the first row that should not exist or is missing.
func (c *indexCursor) match(res *Verification, idx int64, patient string) error {
	if c.err != nil {
		return fmt.Errorf("read audit patient index: %w", c.err)
	}
	if c.ok && c.idx < idx {
		return res.mark(c.idx, fmt.Sprintf("an index row names patient %s for event %d, which does not exist", c.patient, c.idx))
	}
	found := false
	for c.ok && c.idx == idx {
		if c.block != idx>>patientBlockBits {
			return res.mark(idx, fmt.Sprintf("the index row of event %d (patient %s) is filed under block %d, not %d (moved: the event is hidden from the patient's access history)", idx, c.patient, c.block, idx>>patientBlockBits))
		}
		if c.patient != patient {
			return res.mark(idx, fmt.Sprintf("an index row names patient %s for event %d, which names %s", c.patient, idx, describePatient(patient)))
		}
		found = true
		c.next()
	}
	if patient != "" && !found {
		return res.mark(idx, fmt.Sprintf("event %d names patient %s but has no index row (deleted: the event is hidden from the patient's access history)", idx, patient))
	}
	return nil
}

func describePatient(p string) string {
	if p == "" {
		return "no patient"
	}
	return "patient " + p
}
