package records

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
)

// Reading the access log through the door. The log holds no PHI (patients
// by pseudonym), but who read whose record is itself sensitive, so staff
// reads are decided (class audit: the security officer, purpose HOPERAT)
// and audited like any other.

// AuditFilter narrows a read of the access log.
type AuditFilter struct {
	// Patient is a patient's internal id ("" for every patient).
	Patient string
	// Actor is a staff id; Action a prefix such as "observation." .
	Actor, Action string
	// From and To bound the event time, [From, To).
	From, To time.Time
	// Limit caps the events returned, newest kept (default 100, at most
	// 1000).
	Limit int

	pseudonym string
}

const maxAuditEvents = 1000

// AuditEvents returns access-log events, oldest first.
func (d *Door) AuditEvents(ctx context.Context, req Request, f AuditFilter) ([]audit.Event, error) {
	a := &access{req: req, action: ActionSearch, class: ClassAudit, resource: "AuditEvent"}
	if f.Patient != "" {
		facts, err := d.facts(ctx, d.db, f.Patient)
		if err != nil {
			return nil, err
		}
		a.facts, a.resource = facts, "Patient/"+facts.Pseudonym+"/audit"
		f.pseudonym = facts.Pseudonym
	}
	if err := d.authorize(ctx, a); err != nil {
		return nil, err
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return nil, err
	}
	return d.scanAudit(ctx, f)
}

// scanAudit keeps the newest matching events. With a patient it reads
// that patient's events through the log's index by patient; without, it
// walks the whole chain.
func (d *Door) scanAudit(ctx context.Context, f AuditFilter) ([]audit.Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxAuditEvents)
	var ring []audit.Event
	keep := func(e audit.Event) error {
		ring = append(ring, e)
		return nil
	}
	var err error
	if f.pseudonym != "" {
		q := audit.PatientQuery{Pseudonym: f.pseudonym, From: f.From, To: f.To, Limit: limit, Match: f.matches}
		err = audit.ScanPatient(ctx, d.db, d.log.Chain(), q, keep)
	} else {
		err = audit.Scan(ctx, d.db, d.log.Chain(), 0, 0, func(e audit.Event) error {
			if !f.matches(e) {
				return nil
			}
			if len(ring) == limit {
				ring = ring[1:]
			}
			return keep(e)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("read access log: %w", err)
	}
	return ring, nil
}

func (f AuditFilter) matches(e audit.Event) bool {
	switch {
	case f.pseudonym != "" && e.Patient != f.pseudonym:
		return false
	case f.Actor != "" && e.Actor != f.Actor:
		return false
	case f.Action != "" && !strings.HasPrefix(e.Action, f.Action):
		return false
	case !f.From.IsZero() && e.Time.Before(f.From):
		return false
	case !f.To.IsZero() && !e.Time.Before(f.To):
		return false
	}
	return true
}

// ExportRecord reads one record for export (a document leaving the
// system): decided as an export of its class, audited with reason (which
// names the export, never PHI) before the data leaves.
func (d *Door) ExportRecord(ctx context.Context, req Request, id, reason string) (Record, error) {
	var patientID, class string
	if err := d.db.QueryRow(ctx, `SELECT patient_id, class FROM phi_records WHERE id = ?`, id).Scan(&patientID, &class); err != nil {
		return Record{}, fmt.Errorf("%w: record %s", ErrNotFound, id)
	}
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return Record{}, err
	}
	a := &access{req: req, action: ActionExport, class: class, facts: facts, resource: class + "/" + id}
	if err := d.authorize(ctx, a); err != nil {
		return Record{}, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return Record{}, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, reason); err != nil {
		return Record{}, err
	}
	recs, err := d.queryRecords(ctx, pk, patientID, Filter{Class: class}, id)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("%w: record %s", ErrNotFound, id)
	}
	return recs[0], nil
}
