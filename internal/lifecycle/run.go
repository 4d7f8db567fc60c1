package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// RunOptions tune a retention run.
type RunOptions struct {
	// DryRun counts what would be destroyed and destroys nothing.
	DryRun bool
}

// RunResult is what a run did. Signed is the signed certificate (nil on a
// dry run).
type RunResult struct {
	Certificate Certificate
	Signed      []byte
	DryRun      bool
}

// run is one retention run's state.
type run struct {
	e          *Engine
	now        time.Time
	hs         holdSet
	dry        bool
	cert       Certificate
	pseudonyms map[string]bool
}

// Run finds what has expired under the schedule at the engine's clock,
// skips what a legal hold keeps, destroys the rest — crypto-shredding a
// patient whose register and every record have expired, deleting the
// expired sealed rows of everyone else — and writes a signed destruction
// certificate. A clock far from the machine's, or before the last run, is
// refused and nothing is destroyed.
func (e *Engine) Run(ctx context.Context, opt RunOptions) (*RunResult, error) {
	now := e.cfg.Now()
	if err := e.checkClock(ctx, now); err != nil {
		return nil, err
	}
	holds, err := e.Holds(ctx, false)
	if err != nil {
		return nil, err
	}
	r := &run{e: e, now: now, hs: newHoldSet(holds, e.cfg.Schedule), dry: opt.DryRun, pseudonyms: map[string]bool{},
		cert: Certificate{ID: newID("cert_"), Hospital: e.signer.Name(), Schedule: e.cfg.Schedule.Name, RunAt: now,
			By: e.principal(JobRetention).ID, Operator: e.cfg.Operator, Destroyed: []CertItem{}}}
	r.auditNote()
	if err := r.wholePatients(ctx); err != nil {
		return nil, err
	}
	for _, rule := range r.classRules() {
		if err := r.class(ctx, rule); err != nil {
			return nil, err
		}
	}
	return r.finish(ctx)
}

// classRules are the rules whose records a run deletes row by row, by
// class.
func (r *run) classRules() []Rule {
	var out []Rule
	for _, rule := range r.e.cfg.Schedule.Rules {
		if rule.Class != ClassDemographics && rule.Class != ClassAudit {
			out = append(out, rule)
		}
	}
	slices.SortFunc(out, func(a, b Rule) int { return cmp.Compare(a.Class, b.Class) })
	return out
}

// auditNote says on the certificate why the audit log is not destroyed.
func (r *run) auditNote() {
	if rule, ok := r.e.cfg.Schedule.Rule(ClassAudit); ok {
		r.cert.Notes = append(r.cert.Notes, fmt.Sprintf("audit log kept: append-only and free of PHI (rule %s keeps it at least %s)",
			rule.ID(r.e.cfg.Schedule.Name), rule.Keep))
	}
}

// cutoffs are the expiry cutoffs of the classes no hold keeps whole.
func (r *run) cutoffs() map[string]time.Time {
	out := map[string]time.Time{}
	for _, rule := range r.classRules() {
		if _, held := r.hs.class(rule.Class); !held {
			out[rule.Class] = rule.cutoff(r.now)
		}
	}
	return out
}

func (r *run) basis(rule Rule) string {
	return "POLICY " + rule.ID(r.e.cfg.Schedule.Name) + ": " + rule.Basis
}

// wholePatients crypto-shreds the patients whose register and records have
// all expired.
func (r *run) wholePatients(ctx context.Context) error {
	rule, ok := r.e.cfg.Schedule.Rule(ClassDemographics)
	if !ok {
		return nil
	}
	ids, err := r.e.cfg.Door.ExpiredPatients(ctx, records.Expiry{Classes: r.cutoffs(), Patient: rule.cutoff(r.now)})
	if err != nil {
		return err
	}
	held := newHeld()
	var destroy []string
	for _, id := range ids {
		if h, ok := r.holdOnPatient(id); ok {
			held.add(h, ClassDemographics, id, 0)
			continue
		}
		destroy = append(destroy, id)
	}
	item := CertItem{Rule: rule.ID(r.e.cfg.Schedule.Name), Class: ClassDemographics + " (whole patient)", Basis: rule.Basis,
		Keep: rule.Keep.String(), Cutoff: rule.cutoff(r.now), Method: MethodShred, Patients: len(destroy)}
	if !r.dry && len(destroy) > 0 {
		d, err := r.e.cfg.Door.ShredPatients(ctx, r.e.request(JobRetention), destroy, r.basis(rule))
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		item.Records, item.Patients = d.Records, len(d.Patients)
		r.note(d)
	}
	r.cert.Destroyed = append(r.cert.Destroyed, item)
	return r.recordHeld(ctx, held)
}

// holdOnPatient returns a hold that keeps any of the patient's data.
func (r *run) holdOnPatient(id string) (Hold, bool) {
	if r.hs.all != nil {
		return *r.hs.all, true
	}
	if h, ok := r.hs.patients[id]; ok {
		return h, true
	}
	for k, h := range r.hs.patientClass {
		if k[0] == id {
			return h, true
		}
	}
	return Hold{}, false
}

// class deletes the expired records of one class, except what holds keep.
func (r *run) class(ctx context.Context, rule Rule) error {
	cutoff := rule.cutoff(r.now)
	counts, err := r.e.cfg.Door.ExpiredCounts(ctx, rule.Class, cutoff)
	if err != nil {
		return err
	}
	held := newHeld()
	var destroy []string
	records := 0
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		if h, ok := r.hs.covers(id, rule.Class); ok {
			held.add(h, rule.Class, id, counts[id])
			continue
		}
		destroy = append(destroy, id)
		records += counts[id]
	}
	item := CertItem{Rule: rule.ID(r.e.cfg.Schedule.Name), Class: rule.Class, Basis: rule.Basis, Keep: rule.Keep.String(),
		Cutoff: cutoff, Method: MethodDelete, Records: records, Patients: len(destroy)}
	if !r.dry && len(destroy) > 0 {
		d, err := r.e.cfg.Door.DeleteExpired(ctx, r.e.request(JobRetention), rule.Class, cutoff, destroy, r.basis(rule))
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		item.Records, item.Patients = d.Records, len(d.Patients)
		r.note(d)
	}
	r.cert.Destroyed = append(r.cert.Destroyed, item)
	return r.recordHeld(ctx, held)
}

func (r *run) note(d records.Destruction) {
	for p := range d.Patients {
		r.pseudonyms[p] = true
	}
	r.cert.RefusedByPolicy += len(d.Denied)
}

// held gathers what holds kept in one step, per hold.
type held struct {
	items    map[string]*HeldItem
	patients map[string]map[string]bool
	holds    map[string]Hold
}

func newHeld() *held {
	return &held{items: map[string]*HeldItem{}, patients: map[string]map[string]bool{}, holds: map[string]Hold{}}
}

func (h *held) add(hold Hold, class, patientID string, records int) {
	it, ok := h.items[hold.ID]
	if !ok {
		it = &HeldItem{Class: class, Hold: hold.ID, Reason: hold.Reason}
		h.items[hold.ID] = it
		h.patients[hold.ID] = map[string]bool{}
		h.holds[hold.ID] = hold
	}
	it.Records += records
	h.patients[hold.ID][patientID] = true
	it.Patients = len(h.patients[hold.ID])
}

// recordHeld puts what holds kept on the certificate and audits each as a
// refused destruction.
func (r *run) recordHeld(ctx context.Context, h *held) error {
	for _, id := range slices.Sorted(maps.Keys(h.items)) {
		it := h.items[id]
		r.cert.Held = append(r.cert.Held, *it)
		if r.dry {
			continue
		}
		patient := ""
		if pid := h.holds[id].PatientID; pid != "" {
			patient = r.e.cfg.Door.Pseudonym(pid)
		}
		reason := fmt.Sprintf("%d expired %s records of %d patients kept: legal hold %s (%s)", it.Records, it.Class, it.Patients, it.Hold, it.Reason)
		if _, err := r.e.cfg.Audit.Append(ctx, r.e.event(JobRetention, "lifecycle.destroy", patient, "Hold/"+it.Hold, audit.Denied, reason)); err != nil {
			return err
		}
	}
	return nil
}

// finish totals, signs and stores the certificate.
func (r *run) finish(ctx context.Context) (*RunResult, error) {
	c := &r.cert
	for _, it := range c.Destroyed {
		c.Records += it.Records
	}
	c.Patients = len(r.pseudonyms)
	c.PatientsDigest = pseudonymDigest(r.pseudonyms)
	c.SignedAt = r.e.cfg.Wall()
	if r.dry {
		for _, it := range c.Destroyed {
			c.Patients += it.Patients
		}
		return &RunResult{Certificate: *c, DryRun: true}, nil
	}
	signed, err := signCertificate(*c, r.e.signer)
	if err != nil {
		return nil, err
	}
	reason := fmt.Sprintf("certificate %s: %d records of %d patients destroyed, %d holds kept data", c.ID, c.Records, c.Patients, len(c.Held))
	err = r.e.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO lifecycle_runs (id, run_at, schedule, records, patients, certificate) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, r.now.UnixNano(), c.Schedule, c.Records, c.Patients, string(signed)); err != nil {
			return err
		}
		_, err := r.e.cfg.Audit.AppendTx(ctx, tx, r.e.event(JobRetention, "lifecycle.run", "", "Certificate/"+c.ID, audit.Success, reason))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record retention run: %w", err)
	}
	return &RunResult{Certificate: *c, Signed: signed}, nil
}

// Certificate returns a stored signed certificate.
func (e *Engine) Certificate(ctx context.Context, id string) ([]byte, error) {
	var signed string
	err := e.cfg.DB.QueryRow(ctx, `SELECT certificate FROM lifecycle_runs WHERE id = ?`, id).Scan(&signed)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s", ErrNotFound, id)
	}
	return []byte(signed), nil
}
