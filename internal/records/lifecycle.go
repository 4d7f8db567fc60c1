package records

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Door operations for the end of the life cycle (provision, retention,
// patients' requests, the data map). Each follows the door's order:
// authorize → audit (in the transaction of the change) → act.

// ClassAudit is the data class of access and lineage metadata: what a
// patient's record holds and who touched it, never its content. The data
// map and the access history are reads of this class.
const ClassAudit = "audit"

// batchPatients bounds the patients one retention transaction handles (and
// the length of an IN list).
const batchPatients = 400

// Extract is what an export hands out: the patient's demographics when
// asked for, and the records of the classes asked for.
type Extract struct {
	PatientID string
	Pseudonym string
	Patient   *Patient // nil unless demographics were asked for
	Records   []Record // by class, then effective time
}

// Export reads a patient's data of several classes as one audited
// operation (a provision package, the patient's copy of their own record).
// Every class is decided on its own and all must be allowed; the events of
// every class commit before anything is unsealed. reason goes into each
// event (say where the copy goes, never PHI).
func (d *Door) Export(ctx context.Context, req Request, patientID string, classes []string, reason string) (Extract, error) {
	if len(classes) == 0 {
		return Extract{}, fmt.Errorf("%w: an export names at least one data class", ErrInvalid)
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return Extract{}, err
	}
	accesses, err := d.authorizeClasses(ctx, req, ActionExport, facts, uniqueSorted(classes))
	if err != nil {
		return Extract{}, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return Extract{}, d.auditFailure(ctx, accesses[0], err)
	}
	if err := d.auditAll(ctx, accesses, reason); err != nil {
		return Extract{}, err
	}
	return d.readExtract(ctx, pk, facts, accesses)
}

// authorizeClasses asks the policy once per class; the first denial stops
// (it is audited by authorize).
func (d *Door) authorizeClasses(ctx context.Context, req Request, action string, facts *PatientFacts, classes []string) ([]*access, error) {
	out := make([]*access, 0, len(classes))
	for _, c := range classes {
		a := &access{req: req, action: action, class: c, facts: facts, resource: "Patient/" + facts.Pseudonym + "/" + c}
		if err := d.authorize(ctx, a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// auditAll makes the events of several accesses durable in one commit.
func (d *Door) auditAll(ctx context.Context, accesses []*access, reason string) error {
	events := make([]audit.Event, len(accesses))
	for i, a := range accesses {
		events[i] = d.event(a, audit.Success, reason)
	}
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := d.log.AppendTx(ctx, tx, events...)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit before data: %w", err)
	}
	return nil
}

func (d *Door) readExtract(ctx context.Context, pk *keys.PatientKey, facts *PatientFacts, accesses []*access) (Extract, error) {
	x := Extract{PatientID: facts.ID, Pseudonym: facts.Pseudonym}
	for _, a := range accesses {
		if a.class == ClassDemographics {
			p, err := d.unsealPatient(ctx, pk, facts)
			if err != nil {
				return Extract{}, err
			}
			x.Patient = &p
			continue
		}
		recs, err := d.queryRecords(ctx, pk, facts.ID, Filter{Class: a.class}, "")
		if err != nil {
			return Extract{}, err
		}
		x.Records = append(x.Records, recs...)
	}
	return x, nil
}

func uniqueSorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Holdings is what the hospital holds of one patient, without content: the
// sealed records by class and count, and whether the patient was destroyed.
type Holdings struct {
	PatientID  string
	Pseudonym  string
	Registered time.Time
	// Destroyed is set once the patient was crypto-shredded.
	Destroyed *keys.DestroyedError
	Classes   []ClassHolding
}

// ClassHolding counts one class of a patient's records.
type ClassHolding struct {
	Class          string
	Count          int
	Oldest, Newest time.Time // effective times
}

// LastActivity is the effective time of the patient's newest record, or the
// registration when there is none: retention of the patient register runs
// from it.
func (h Holdings) LastActivity() time.Time {
	last := time.Time{}
	for _, c := range h.Classes {
		if c.Newest.After(last) {
			last = c.Newest
		}
	}
	if last.IsZero() {
		return h.Registered
	}
	return last
}

// Holdings counts a patient's records by class for the data map. It is a
// read of the patient's lineage metadata (class audit), decided and
// audited like any other read.
func (d *Door) Holdings(ctx context.Context, req Request, patientID string) (Holdings, error) {
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return Holdings{}, err
	}
	a := &access{req: req, action: ActionSearch, class: ClassAudit, facts: facts, resource: "Patient/" + facts.Pseudonym + "/holdings"}
	if err := d.authorize(ctx, a); err != nil {
		return Holdings{}, err
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return Holdings{}, err
	}
	return d.holdings(ctx, facts)
}

// Inventory is Holdings for medsec's own jobs: the retention run and an
// erasure weigh a patient's classes and dates before they destroy
// anything. Like Facts it hands out no content and nothing reaches a
// person, so it is neither decided nor audited; the destruction it leads
// to is both.
func (d *Door) Inventory(ctx context.Context, patientID string) (Holdings, error) {
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return Holdings{}, err
	}
	return d.holdings(ctx, facts)
}

// PatientHoldings is the data map's count of the patient's own record, for
// the patient signed in to the portal ("where is my data?"). Audited.
func (d *Door) PatientHoldings(ctx context.Context, p PatientPrincipal) (Holdings, error) {
	if !p.verified {
		return Holdings{}, ErrUnauthenticated
	}
	facts, err := d.facts(ctx, d.db, p.patientID)
	if err != nil {
		return Holdings{}, err
	}
	if _, err := d.log.Append(ctx, d.patientEvent(p, "audit.search", "Patient/"+p.Pseudonym+"/holdings", audit.Success, "the patient traced their own data")); err != nil {
		return Holdings{}, fmt.Errorf("audit before data: %w", err)
	}
	return d.holdings(ctx, facts)
}

// PatientExport gives the patient signed in to the portal a copy of their
// whole record (demographics and every class) as one audited operation.
func (d *Door) PatientExport(ctx context.Context, p PatientPrincipal, reason string) (Extract, error) {
	if !p.verified {
		return Extract{}, ErrUnauthenticated
	}
	facts, err := d.facts(ctx, d.db, p.patientID)
	if err != nil {
		return Extract{}, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return Extract{}, err
	}
	classes, err := d.classHoldings(ctx, p.patientID)
	if err != nil {
		return Extract{}, err
	}
	accesses := []*access{{class: ClassDemographics}}
	for _, c := range classes {
		accesses = append(accesses, &access{class: c.Class})
	}
	ev := d.patientEvent(p, "patient.export", "Patient/"+p.Pseudonym, audit.Success, reason)
	if _, err := d.log.Append(ctx, ev); err != nil {
		return Extract{}, fmt.Errorf("audit before data: %w", err)
	}
	return d.readExtract(ctx, pk, facts, accesses)
}

func (d *Door) holdings(ctx context.Context, facts *PatientFacts) (Holdings, error) {
	h := Holdings{PatientID: facts.ID, Pseudonym: facts.Pseudonym}
	var err error
	if h.Registered, err = d.registered(ctx, facts.ID); err != nil {
		return Holdings{}, err
	}
	if facts.Destroyed {
		_, kerr := d.patientKey(ctx, facts)
		errors.As(kerr, &h.Destroyed)
	}
	h.Classes, err = d.classHoldings(ctx, facts.ID)
	return h, err
}

func (d *Door) registered(ctx context.Context, patientID string) (time.Time, error) {
	var created int64
	if err := d.db.QueryRow(ctx, `SELECT created_at FROM phi_patients WHERE id = ?`, patientID).Scan(&created); err != nil {
		return time.Time{}, fmt.Errorf("read patient %s: %w", patientID, err)
	}
	return time.Unix(0, created), nil
}

func (d *Door) classHoldings(ctx context.Context, patientID string) ([]ClassHolding, error) {
	rows, err := d.db.Query(ctx, `SELECT class, COUNT(*), MIN(effective_at), MAX(effective_at) FROM phi_items WHERE patient_id = ? GROUP BY class ORDER BY class`, patientID)
	if err != nil {
		return nil, fmt.Errorf("count records: %w", err)
	}
	defer rows.Close()
	var out []ClassHolding
	for rows.Next() {
		var c ClassHolding
		var oldest, newest int64
		if err := rows.Scan(&c.Class, &c.Count, &oldest, &newest); err != nil {
			return nil, err
		}
		c.Oldest, c.Newest = time.Unix(0, oldest), time.Unix(0, newest)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Expiry says what a retention run considers expired.
type Expiry struct {
	// Classes maps a data class to the cutoff before which its records
	// (by effective time) have expired. A class without an entry never
	// expires.
	Classes map[string]time.Time
	// Patient is the cutoff for a whole patient: one whose last activity
	// is before it and every one of whose records has expired goes whole.
	Patient time.Time
	// Keep lists patients (internal ids) that must not be touched (legal
	// hold).
	Keep []string
}

// ExpiredPatients lists the patients who go whole under e: not yet
// destroyed, not kept, last activity before e.Patient, and no record that
// has not expired. It reads ids and times only, no content.
func (d *Door) ExpiredPatients(ctx context.Context, e Expiry) ([]string, error) {
	if e.Patient.IsZero() {
		return nil, nil
	}
	live, args := liveRecordPredicate(e)
	q := `SELECT p.id FROM phi_patients p WHERE p.destroyed_at IS NULL
		AND COALESCE((SELECT MAX(r.effective_at) FROM phi_items r WHERE r.patient_id = p.id), p.created_at) < ?
		AND NOT EXISTS (SELECT 1 FROM phi_items r WHERE r.patient_id = p.id AND (` + live + `)) ORDER BY p.id`
	args = append([]any{e.Patient.UnixNano()}, args...)
	rows, err := d.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find expired patients: %w", err)
	}
	defer rows.Close()
	keep := setOf(e.Keep)
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if !keep[id] {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

// liveRecordPredicate is true for a record of r that has not expired.
func liveRecordPredicate(e Expiry) (string, []any) {
	classes := make([]string, 0, len(e.Classes))
	for c := range e.Classes {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	if len(classes) == 0 {
		return "1 = 1", nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(classes))
	b.WriteString("r.class NOT IN (" + strings.TrimSuffix(strings.Repeat("?,", len(classes)), ",") + ")")
	for _, c := range classes {
		args = append(args, c)
	}
	for _, c := range classes {
		b.WriteString(" OR (r.class = ? AND r.effective_at >= ?)")
		args = append(args, c, e.Classes[c].UnixNano())
	}
	return b.String(), args
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// ExpiredCounts counts, per patient (internal id), the records of class
// whose effective time is before cutoff, leaving out destroyed patients.
func (d *Door) ExpiredCounts(ctx context.Context, class string, cutoff time.Time) (map[string]int, error) {
	rows, err := d.db.Query(ctx, `SELECT r.patient_id, COUNT(*) FROM phi_items r JOIN phi_patients p ON p.id = r.patient_id
		WHERE r.class = ? AND r.effective_at < ? AND p.destroyed_at IS NULL GROUP BY r.patient_id`, class, cutoff.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("count expired %s records: %w", class, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// Destruction reports what a retention operation did.
type Destruction struct {
	// Patients maps each patient touched (by pseudonym) to the records
	// destroyed (for a crypto-shredding, the records made unreadable).
	Patients map[string]int
	Records  int
	// Denied lists the pseudonyms the policy refused (audited).
	Denied []string
}

func newDestruction() Destruction { return Destruction{Patients: map[string]int{}} }

// DeleteExpired deletes the sealed rows of class with an effective time
// before cutoff for the patients listed (internal ids), the way retention
// destroys part of a patient's record. Each patient is decided on its own
// (action destroy) and gets one audit event in the transaction of its
// deletion; freed pages are zeroed (secure_delete) and pushed out of the
// write-ahead log before it returns.
func (d *Door) DeleteExpired(ctx context.Context, req Request, class string, cutoff time.Time, patients []string, basis string) (Destruction, error) {
	if strings.TrimSpace(basis) == "" || class == "" {
		return Destruction{}, fmt.Errorf("%w: a deletion names its class and basis (POLICY …)", ErrInvalid)
	}
	res := newDestruction()
	for batch := range slices.Chunk(uniqueSorted(patients), batchPatients) {
		if err := d.deleteBatch(ctx, req, class, cutoff, batch, basis, &res); err != nil {
			return res, err
		}
	}
	return res, d.db.Compact(ctx)
}

func (d *Door) deleteBatch(ctx context.Context, req Request, class string, cutoff time.Time, ids []string, basis string, res *Destruction) error {
	allowed, err := d.decideDestroy(ctx, req, class, ids, res)
	if err != nil || len(allowed) == 0 {
		return err
	}
	counts := map[string]int{}
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if counts, err = countRecords(ctx, tx, allowed, class, &cutoff); err != nil {
			return err
		}
		events := make([]audit.Event, 0, len(allowed))
		for _, a := range allowed {
			a.resource = fmt.Sprintf("Patient/%s/%s[%d]", a.facts.Pseudonym, class, counts[a.facts.ID])
			events = append(events, d.event(a, audit.Success, "sealed rows deleted: "+basis))
		}
		if _, err := d.log.AppendTx(ctx, tx, events...); err != nil {
			return err
		}
		q := `DELETE FROM phi_records WHERE class = ? AND effective_at < ? AND patient_id IN (` + placeholders(len(allowed)) + `)`
		args := []any{class, cutoff.UnixNano()}
		if class == ClassImaging {
			// Images live in their own table (radiology: 5 years in Korea).
			q = `DELETE FROM phi_imaging WHERE effective_at < ? AND patient_id IN (` + placeholders(len(allowed)) + `)`
			args = args[1:]
		}
		for _, a := range allowed {
			args = append(args, a.facts.ID)
		}
		_, err = tx.Exec(ctx, q, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete expired %s records: %w", class, err)
	}
	for _, a := range allowed {
		res.Patients[a.facts.Pseudonym] += counts[a.facts.ID]
		res.Records += counts[a.facts.ID]
	}
	return nil
}

// decideDestroy loads the patients' facts in one query and asks the policy
// about each; refusals are audited and noted in res.
func (d *Door) decideDestroy(ctx context.Context, req Request, class string, ids []string, res *Destruction) ([]*access, error) {
	facts, err := d.factsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	var allowed []*access
	for _, f := range facts {
		a := &access{req: req, action: ActionDestroy, class: class, facts: f, resource: "Patient/" + f.Pseudonym + "/" + class}
		err := d.authorize(ctx, a)
		var denied *DeniedError
		switch {
		case errors.As(err, &denied):
			res.Denied = append(res.Denied, f.Pseudonym)
		case err != nil:
			return nil, err
		default:
			allowed = append(allowed, a)
		}
	}
	return allowed, nil
}

// factsOf loads, in one query, what facts loads for each live patient
// among ids.
func (d *Door) factsOf(ctx context.Context, ids []string) ([]*PatientFacts, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := d.db.Query(ctx, `SELECT id, pseudonym, department, ward, labels, attending, care_team, active_encounter, consents, staff_member, surname_digest
		FROM phi_patients WHERE destroyed_at IS NULL AND id IN (`+placeholders(len(ids))+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read patients: %w", err)
	}
	defer rows.Close()
	var out []*PatientFacts
	for rows.Next() {
		f := &PatientFacts{}
		var labels, team, consents string
		var active, staffMember int
		if err := rows.Scan(&f.ID, &f.Pseudonym, &f.Department, &f.Ward, &labels, &f.Attending, &team, &active, &consents, &staffMember, &f.surname); err != nil {
			return nil, err
		}
		f.Labels, f.CareTeam, f.ActiveEncounter, f.StaffMember = d.decodeLabels(f.ID, labels), splitList(team), active != 0, staffMember != 0
		if f.Consents, err = decodeTerms(consents); err != nil {
			return nil, fmt.Errorf("read consents of %s: %w", f.Pseudonym, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// countRecords counts the records of each allowed patient, of one class
// before cutoff when class is set, in the transaction that deletes them.
func countRecords(ctx context.Context, q store.Querier, allowed []*access, class string, cutoff *time.Time) (map[string]int, error) {
	query := `SELECT patient_id, COUNT(*) FROM phi_items WHERE patient_id IN (` + placeholders(len(allowed)) + `)`
	args := make([]any, 0, len(allowed)+2)
	for _, a := range allowed {
		args = append(args, a.facts.ID)
	}
	if class != "" {
		query += ` AND class = ? AND effective_at < ?`
		args = append(args, class, cutoff.UnixNano())
	}
	rows, err := q.Query(ctx, query+` GROUP BY patient_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("count records: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// ShredPatients crypto-shreds several patients, as DestroyPatient does for
// one, in transactions of a few hundred and with one compaction at the end:
// each patient is decided (action destroy, class demographics), gets an
// audit event in the transaction of its destruction, loses its data key
// and the rows of shreddedTables. Patients already destroyed are skipped.
func (d *Door) ShredPatients(ctx context.Context, req Request, ids []string, basis string) (Destruction, error) {
	if strings.TrimSpace(basis) == "" {
		return Destruction{}, fmt.Errorf("%w: destruction needs a basis (REQUEST … or POLICY …)", ErrInvalid)
	}
	res := newDestruction()
	for batch := range slices.Chunk(uniqueSorted(ids), batchPatients) {
		if err := d.shredBatch(ctx, req, batch, basis, &res); err != nil {
			return res, err
		}
	}
	return res, d.db.Compact(ctx)
}

func (d *Door) shredBatch(ctx context.Context, req Request, ids []string, basis string, res *Destruction) error {
	allowed, err := d.decideDestroy(ctx, req, ClassDemographics, ids, res)
	if err != nil || len(allowed) == 0 {
		return err
	}
	counts := map[string]int{}
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if counts, err = countRecords(ctx, tx, allowed, "", nil); err != nil {
			return err
		}
		events := make([]audit.Event, 0, len(allowed))
		for _, a := range allowed {
			if err := d.keys.DestroyPatientKey(ctx, tx, a.facts.ID, a.req.Who.ID, basis); err != nil {
				return fmt.Errorf("patient %s: %w", a.facts.Pseudonym, err)
			}
			events = append(events, d.event(a, audit.Success, fmt.Sprintf("crypto-shredded with %d records: %s", counts[a.facts.ID], basis)))
		}
		if _, err := d.log.AppendTx(ctx, tx, events...); err != nil {
			return err
		}
		return d.deleteShredded(ctx, tx, allowed)
	})
	if err != nil {
		return fmt.Errorf("crypto-shred patients: %w", err)
	}
	for _, a := range allowed {
		res.Patients[a.facts.Pseudonym] = counts[a.facts.ID]
		res.Records += counts[a.facts.ID]
	}
	return nil
}

// deleteShredded does what DestroyPatient does after the key is gone, for
// a batch: the rows of shreddedTables deleted, the patients marked.
func (d *Door) deleteShredded(ctx context.Context, tx *store.Tx, allowed []*access) error {
	in := placeholders(len(allowed))
	args := make([]any, 0, len(allowed)+1)
	for _, a := range allowed {
		args = append(args, a.facts.ID)
	}
	for _, t := range shreddedTables {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE patient_id IN (`+in+`)`, args...); err != nil {
			return fmt.Errorf("delete %s rows: %w", t, err)
		}
	}
	_, err := tx.Exec(ctx, `UPDATE phi_patients SET destroyed_at = ? WHERE id IN (`+in+`)`, append([]any{d.now().UnixNano()}, args...)...)
	return err
}
