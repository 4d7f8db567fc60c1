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

// Door operations for research and AI training (issue 6): choosing a
// cohort of patients whose consent permits the purpose, reading their data
// in batches for de-identification, sealing and opening the lineage of a
// dataset, and telling which members have since withdrawn or been erased.
// Every read follows the door's order: decide → audit → unseal.
//
// A cohort is screened patient by patient with the policy, the same
// question a read asks. Patients the policy refuses (no consent for the
// purpose, a denial, a withdrawal) are left out of the cohort rather than
// refused one by one: a screening is not an attempt on their records, so it
// is audited as one event that counts them, and their records are never
// unsealed.

// ResearchQuery names a cohort and what is read of it.
type ResearchQuery struct {
	// Departments the patients are cared for in; empty means every one.
	Departments []string
	// Classes are the record classes read besides demographics. A patient
	// is a candidate when they have a record of one of them in the window
	// (with one of Codes, when given); with no classes every patient of
	// the departments is.
	Classes []string
	// Codes keep the records of Classes with one of these codes (exact
	// match through the blind index); empty keeps every record.
	Codes []string
	// From and To bound the records' effective time, [From, To); zero is
	// open.
	From, To time.Time
	// Reason says where the data goes ("dataset ds_… sepsis-2026"); it goes
	// into every audit event, so never put PHI in it.
	Reason string
}

// ResearchMember is one patient of a cohort, by internal id and pseudonym.
type ResearchMember struct {
	ID, Pseudonym string
	// Reason says why the patient was left out (empty for members).
	Reason string `json:",omitempty"`
}

// ResearchCohort is the result of a screening.
type ResearchCohort struct {
	// Candidates is the number of live patients the query names, before
	// consent.
	Candidates int
	// Members are the candidates the policy allows for the purpose, in id
	// order; Excluded the others, with the policy's reason.
	Members  []ResearchMember
	Excluded []ResearchMember
	// Policies are the policies that allowed the members' reads; Flags the
	// flags on those decisions ("deidentified-only").
	Policies, Flags []string
}

// ResearchBatch is one batch of members' data, read for de-identification.
type ResearchBatch struct {
	Extracts []Extract
	// Excluded are members the policy no longer allows (a consent withdrawn
	// since the screening) or who were destroyed since.
	Excluded []ResearchMember
}

// checkResearch refuses a request a research operation cannot serve.
func checkResearch(req Request, q ResearchQuery) error {
	if !req.Who.Verified() {
		return ErrUnauthenticated
	}
	if req.BreakGlass != "" {
		return fmt.Errorf("%w: research never breaks the glass", ErrInvalid)
	}
	if strings.TrimSpace(q.Reason) == "" || len(q.Reason) > 300 {
		return fmt.Errorf("%w: a research read names where the data goes (a reason of 1 to 300 bytes)", ErrInvalid)
	}
	for _, c := range q.Classes {
		if c == ClassDemographics || c == ClassAudit || c == ClassConsent {
			return fmt.Errorf("%w: %q is not a record class a cohort reads", ErrInvalid, c)
		}
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return fmt.Errorf("%w: the cohort's window must end after it starts", ErrInvalid)
	}
	return nil
}

// ResearchCohort screens the candidates of q with the policy, as req, and
// returns the members whose reads the policy allows for req.Purpose (the
// shipped policy: researchers, for HRESCH or MLTRAINING, with the
// patient's consent to that purpose, flagged "deidentified-only"). One
// audit event records the screening and its counts; nothing is unsealed.
func (d *Door) ResearchCohort(ctx context.Context, req Request, q ResearchQuery) (ResearchCohort, error) {
	if err := checkResearch(req, q); err != nil {
		return ResearchCohort{}, err
	}
	ids, err := d.researchCandidates(ctx, q)
	if err != nil {
		return ResearchCohort{}, err
	}
	c := ResearchCohort{Candidates: len(ids)}
	for _, id := range ids {
		if err := d.screenCandidate(ctx, req, q, id, &c); err != nil {
			return ResearchCohort{}, err
		}
	}
	if _, err := d.log.Append(ctx, d.screeningEvent(req, q, c)); err != nil {
		return ResearchCohort{}, fmt.Errorf("audit research screening: %w", err)
	}
	return c, nil
}

func (d *Door) screenCandidate(ctx context.Context, req Request, q ResearchQuery, id string, c *ResearchCohort) error {
	accesses, excluded, err := d.screenMember(ctx, req, q, id)
	switch {
	case err != nil:
		return err
	case excluded != nil:
		c.Excluded = append(c.Excluded, *excluded)
		return nil
	}
	f := accesses[0].facts
	c.Members = append(c.Members, ResearchMember{ID: f.ID, Pseudonym: f.Pseudonym})
	for _, a := range accesses {
		c.Policies = mergeSorted(c.Policies, a.decision.Policies)
		c.Flags = mergeSorted(c.Flags, a.decision.Flags)
	}
	return nil
}

func mergeSorted(a, b []string) []string {
	return uniqueSorted(append(a, b...))
}

// screen asks the policy about every class of a research read of the
// patient, without auditing a refusal. It returns the allowed accesses, or
// the first refusal's reason.
func (d *Door) screen(ctx context.Context, req Request, f *PatientFacts, classes []string) ([]*access, string, error) {
	if f.Destroyed {
		return nil, "destroyed", nil
	}
	all := append([]string{ClassDemographics}, uniqueSorted(classes)...)
	out := make([]*access, 0, len(all))
	for _, c := range all {
		a := &access{req: req, action: ActionRead, class: c, facts: f, resource: "Patient/" + f.Pseudonym + "/" + c}
		qn, err := d.question(ctx, a)
		if err != nil {
			return nil, "", err
		}
		if a.decision = d.decider.Decide(ctx, qn); !a.decision.Allow {
			return nil, c + ": " + strings.Join(a.decision.Reasons, "; "), nil
		}
		out = append(out, a)
	}
	return out, "", nil
}

func (d *Door) screeningEvent(req Request, q ResearchQuery, c ResearchCohort) audit.Event {
	a := &access{req: req, action: ActionSearch, class: ClassAudit, resource: "Cohort?" + strings.Join(q.Classes, ","),
		decision: Decision{Allow: true, Flags: c.Flags, Policies: c.Policies}}
	reason := fmt.Sprintf("research screening for %s: %d candidates, %d allowed for %s, %d excluded",
		q.Reason, c.Candidates, len(c.Members), req.Purpose, len(c.Excluded))
	return d.event(a, audit.Success, reason)
}

// researchCandidates lists the live patients q names, in id order. Codes
// are matched through the blind index, so no code is decrypted.
func (d *Door) researchCandidates(ctx context.Context, q ResearchQuery) ([]string, error) {
	where, args := []string{"p.destroyed_at IS NULL"}, []any{}
	if len(q.Departments) > 0 {
		where = append(where, "p.department IN ("+placeholders(len(q.Departments))+")")
		for _, dep := range q.Departments {
			args = append(args, dep)
		}
	}
	if len(q.Classes) > 0 {
		rw, ra := d.recordPredicate(q, "r")
		where = append(where, "EXISTS (SELECT 1 FROM phi_records r WHERE r.patient_id = p.id AND "+rw+")")
		args = append(args, ra...)
	}
	rows, err := d.db.Query(ctx, `SELECT p.id FROM phi_patients p WHERE `+strings.Join(where, " AND ")+` ORDER BY p.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("find research candidates: %w", err)
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

// recordPredicate is the SQL condition on phi_records (alias t) for the
// records q reads: its classes, codes and window.
func (d *Door) recordPredicate(q ResearchQuery, t string) (string, []any) {
	classes := uniqueSorted(q.Classes)
	var args []any
	for _, c := range classes {
		args = append(args, c)
	}
	cond := []string{t + ".class IN (" + placeholders(len(classes)) + ")"}
	if len(q.Codes) > 0 {
		cond = append(cond, t+".code_digest IN ("+placeholders(len(classes)*len(q.Codes))+")")
		for _, c := range classes {
			for _, code := range q.Codes {
				args = append(args, d.blindIndex("code", c+"|"+code))
			}
		}
	}
	if !q.From.IsZero() {
		cond = append(cond, t+".effective_at >= ?")
		args = append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		cond = append(cond, t+".effective_at < ?")
		args = append(args, q.To.UnixNano())
	}
	return strings.Join(cond, " AND "), args
}

// ResearchRead reads the demographics and the records q names of the
// members ids (at most a few hundred at a time), for de-identification.
// Each member is decided again (a consent may have been withdrawn since the
// screening); the events of every allowed read commit in one transaction
// before anything is unsealed, with a count of the members left out.
func (d *Door) ResearchRead(ctx context.Context, req Request, q ResearchQuery, ids []string) (ResearchBatch, error) {
	if err := checkResearch(req, q); err != nil {
		return ResearchBatch{}, err
	}
	if len(ids) > batchPatients {
		return ResearchBatch{}, fmt.Errorf("%w: read at most %d patients at a time", ErrInvalid, batchPatients)
	}
	var b ResearchBatch
	var allowed [][]*access
	for _, id := range ids {
		accesses, excluded, err := d.screenMember(ctx, req, q, id)
		if err != nil {
			return ResearchBatch{}, err
		}
		if excluded != nil {
			b.Excluded = append(b.Excluded, *excluded)
			continue
		}
		allowed = append(allowed, accesses)
	}
	if err := d.auditResearchRead(ctx, req, q, allowed, b.Excluded); err != nil {
		return ResearchBatch{}, err
	}
	return d.readResearch(ctx, q, allowed, b)
}

func (d *Door) screenMember(ctx context.Context, req Request, q ResearchQuery, id string) ([]*access, *ResearchMember, error) {
	f, err := d.facts(ctx, d.db, id)
	if err != nil {
		return nil, nil, err
	}
	accesses, why, err := d.screen(ctx, req, f, q.Classes)
	if err != nil || why == "" {
		return accesses, nil, err
	}
	return nil, &ResearchMember{ID: f.ID, Pseudonym: f.Pseudonym, Reason: why}, nil
}

// auditResearchRead commits the events of the allowed reads (and one that
// counts the members left out) before any data leaves.
func (d *Door) auditResearchRead(ctx context.Context, req Request, q ResearchQuery, allowed [][]*access, excluded []ResearchMember) error {
	var events []audit.Event
	for _, accesses := range allowed {
		for _, a := range accesses {
			events = append(events, d.event(a, audit.Success, q.Reason))
		}
	}
	if len(excluded) > 0 {
		a := &access{req: req, action: ActionSearch, class: ClassAudit, resource: "Cohort?" + strings.Join(q.Classes, ","),
			decision: Decision{Allow: true}}
		events = append(events, d.event(a, audit.Success,
			fmt.Sprintf("research read for %s: %d members left out (consent withdrawn or destroyed since the screening)", q.Reason, len(excluded))))
	}
	if len(events) == 0 {
		return nil
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

func (d *Door) readResearch(ctx context.Context, q ResearchQuery, allowed [][]*access, b ResearchBatch) (ResearchBatch, error) {
	for _, accesses := range allowed {
		f := accesses[0].facts
		pk, err := d.patientKey(ctx, f)
		if errors.Is(err, keys.ErrDestroyed) {
			b.Excluded = append(b.Excluded, ResearchMember{ID: f.ID, Pseudonym: f.Pseudonym, Reason: "destroyed"})
			continue
		}
		if err != nil {
			return ResearchBatch{}, err
		}
		x, err := d.researchExtract(ctx, pk, f, q)
		if err != nil {
			return ResearchBatch{}, fmt.Errorf("read patient %s: %w", f.Pseudonym, err)
		}
		b.Extracts = append(b.Extracts, x)
	}
	return b, nil
}

func (d *Door) researchExtract(ctx context.Context, pk *keys.PatientKey, f *PatientFacts, q ResearchQuery) (Extract, error) {
	p, err := d.unsealPatient(ctx, pk, f)
	if err != nil {
		return Extract{}, err
	}
	x := Extract{PatientID: f.ID, Pseudonym: f.Pseudonym, Patient: &p}
	if len(q.Classes) == 0 {
		return x, nil
	}
	cond, args := d.recordPredicate(q, "r")
	rows, err := d.db.Query(ctx, `SELECT r.id, r.class, r.effective_at, r.created_at, r.created_by, r.source, r.labels, r.code, r.payload
		FROM phi_records r WHERE r.patient_id = ? AND `+cond+` ORDER BY r.class, r.effective_at, r.id`, append([]any{f.ID}, args...)...)
	if err != nil {
		return Extract{}, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows, pk, f.ID)
		if err != nil {
			return Extract{}, err
		}
		x.Records = append(x.Records, r)
	}
	return x, rows.Err()
}

// ResearchStanding is whether a dataset member may still be in a dataset
// made for a purpose.
type ResearchStanding struct {
	Pseudonym string
	// Erased: the patient was destroyed (crypto-shredded) or is unknown.
	Erased bool
	// Withdrawn: no consent in force permits the purpose for every class
	// any more, or a denial now covers one.
	Withdrawn bool
	// Since is when the erasure or the end of consent took effect (zero
	// when unknown).
	Since time.Time
}

// Stale reports whether the member must leave the dataset.
func (s ResearchStanding) Stale() bool { return s.Erased || s.Withdrawn }

// ResearchStandings tells, for each member (by pseudonym), whether they were
// erased or their consent to purpose for classes (demographics always) no
// longer stands at now. It reads consent terms and destruction marks only,
// no PHI, like Facts, so it is neither decided nor audited. The consent
// rule is research.cedar's: a permit in force for the purpose covering the
// class, and no denial in force covering it.
func (d *Door) ResearchStandings(ctx context.Context, purpose string, classes, pseudonyms []string, now time.Time) ([]ResearchStanding, error) {
	all := append([]string{ClassDemographics}, uniqueSorted(classes)...)
	out := make([]ResearchStanding, 0, len(pseudonyms))
	for _, p := range pseudonyms {
		s, err := d.standing(ctx, purpose, all, p, now)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (d *Door) standing(ctx context.Context, purpose string, classes []string, pseudonym string, now time.Time) (ResearchStanding, error) {
	s := ResearchStanding{Pseudonym: pseudonym}
	id, err := d.ResolvePseudonym(ctx, pseudonym)
	if errors.Is(err, ErrNotFound) {
		s.Erased = true
		return s, nil
	}
	if err != nil {
		return s, err
	}
	f, err := d.facts(ctx, d.db, id)
	if err != nil {
		return s, err
	}
	if f.Destroyed {
		s.Erased, s.Since = true, d.destroyedAt(ctx, id)
		return s, nil
	}
	for _, c := range classes {
		if ok, since := consentStands(f.Consents, purpose, c, now); !ok {
			s.Withdrawn, s.Since = true, since
			break
		}
	}
	return s, nil
}

func (d *Door) destroyedAt(ctx context.Context, id string) time.Time {
	var at *int64
	if err := d.db.QueryRow(ctx, `SELECT destroyed_at FROM phi_patients WHERE id = ?`, id).Scan(&at); err != nil {
		return time.Time{}
	}
	return fromNanos(at)
}

// consentStands applies the research rule to one class; when it fails it
// returns the latest end of a permit that once covered the class.
func consentStands(terms []ConsentTerm, purpose, class string, now time.Time) (bool, time.Time) {
	permit, deny := false, false
	var ended time.Time
	for _, t := range terms {
		if t.Purpose != purpose || (len(t.Classes) > 0 && !slices.Contains(t.Classes, class)) {
			continue
		}
		inForce := !now.Before(t.From) && (t.Until.IsZero() || now.Before(t.Until))
		switch {
		case inForce && t.Permit:
			permit = true
		case inForce:
			deny = true
		case t.Permit && !t.Until.IsZero() && t.Until.After(ended):
			ended = t.Until
		}
	}
	return permit && !deny, ended
}

// SealLineage seals a dataset's lineage of one patient (which output rows
// came from which of their records) with the patient's data key, so it is
// kept only as long as the patient is: crypto-shredding the patient
// destroys it with everything else. Sealing discloses nothing and the
// sealed bytes open only through OpenLineage, which is decided and
// audited, so sealing itself is not.
func (d *Door) SealLineage(ctx context.Context, patientID, datasetID string, lineage []byte) ([]byte, error) {
	f, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return nil, err
	}
	pk, err := d.patientKey(ctx, f)
	if err != nil {
		return nil, err
	}
	return pk.Seal(lineageField(datasetID, patientID), lineage), nil
}

func lineageField(datasetID, patientID string) keys.Field {
	return keys.Field{Table: "dataset_lineage", Record: datasetID + "/" + patientID, Name: "lineage"}
}

// OpenLineage opens a patient's sealed dataset lineage: re-identification
// of a dataset row, a read of the patient's lineage metadata (class audit)
// that the policy decides (the shipped one: the security officer, for
// operations, with a second factor) and the audit log records, with reason,
// before it is opened.
func (d *Door) OpenLineage(ctx context.Context, req Request, patientID, datasetID string, sealed []byte, reason string) ([]byte, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("%w: re-identification needs a reason", ErrInvalid)
	}
	f, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return nil, err
	}
	a := &access{req: req, action: ActionRead, class: ClassAudit, facts: f, resource: "Dataset/" + datasetID + "/lineage"}
	if err := d.authorize(ctx, a); err != nil {
		return nil, err
	}
	pk, err := d.patientKey(ctx, f)
	if err != nil {
		return nil, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, "re-identify a dataset row: "+reason); err != nil {
		return nil, err
	}
	return pk.Open(lineageField(datasetID, patientID), sealed)
}
