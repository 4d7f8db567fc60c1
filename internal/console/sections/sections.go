// Package sections fills the security console's sections from the
// capabilities of the end of the life cycle: the provision ledger
// (package provision, locations 8, 10 and 11), retention runs with their
// signed destruction certificates, and the patient's copy of their record
// and erasure request (package lifecycle, location 9). The console itself
// depends on none of them; `medsec serve` hands these to it.
package sections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/records"
)

// New returns the console's sections of an installation with its
// life-cycle engine, provision service and dataset register (nil: the
// datasets page says it is not available).
func New(h *hospital.Hospital, engine *lifecycle.Engine, prov *provision.Service, ds *dataset.Service) console.Sections {
	s := console.Sections{
		Ledger:       Ledger{Provision: prov, Now: time.Now},
		Retention:    Retention{Hospital: h},
		Certificates: engine,
		Patient:      Patient{Door: h.Door, Engine: engine},
	}
	if ds != nil {
		s.Datasets = Datasets{Register: ds}
	}
	return s
}

// Datasets is the register of AI datasets as a console table, with the
// ones that hold a patient who since withdrew consent or was erased.
type Datasets struct{ Register *dataset.Service }

// Table lists every dataset, newest first; stale ones are marked.
func (d Datasets) Table(ctx context.Context) (console.Table, error) {
	infos, err := d.Register.List(ctx, true)
	if err != nil {
		return console.Table{}, err
	}
	t := console.Table{Columns: []string{"col.dataset", "col.purpose", "col.created", "col.state", "col.rows", "k", "col.stale"}}
	stale := 0
	for _, in := range infos {
		state := "pass"
		if len(in.Stale) > 0 {
			state, stale = "warn", stale+1
		}
		t.Rows = append(t.Rows, console.Row{State: state, Cells: []string{in.ID + " " + in.Name, in.Purpose, day(in.Created), in.State,
			fmt.Sprintf("%d rows, %d patients", in.Rows, in.Patients), fmt.Sprint(in.K), fmt.Sprintf("%d", len(in.Stale))}})
	}
	t.Note = fmt.Sprintf("%d datasets, %d with members who since withdrew consent or were erased (medsec dataset list --stale)", len(infos), stale)
	return t, nil
}

// Ledger is the provision ledger as a console table.
type Ledger struct {
	Provision *provision.Service
	Now       func() time.Time
}

// Table lists every package, newest first, with its state: open, overdue
// (past its destruction deadline without a receipt) or closed.
func (l Ledger) Table(ctx context.Context) (console.Table, error) {
	es, err := l.Provision.Entries(ctx, provision.Filter{})
	if err != nil {
		return console.Table{}, err
	}
	t := console.Table{Columns: []string{"col.package", "col.recipient", "col.patient", "col.purpose", "col.basis", "col.created", "col.deadline", "col.state", "col.receipt"}}
	now := l.Now()
	for _, e := range es {
		state := e.State(now)
		t.Rows = append(t.Rows, console.Row{State: ledgerState(state), Cells: []string{e.ID, e.RecipientName + " (" + e.Recipient + ", " + e.RecipientKind + ")",
			e.Patient, e.Purpose, dash(e.Basis), day(e.Created), day(e.Deadline), state, day(e.Closed)}})
	}
	t.Note = fmt.Sprintf("%d packages; verify one with: medsec provision ledger", len(es))
	return t, nil
}

func ledgerState(s string) string {
	switch s {
	case provision.StateOverdue:
		return "fail"
	case provision.StateClosed:
		return "pass"
	}
	return "warn"
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format(time.DateOnly)
}

// Retention lists the retention runs recorded in the audit log, each with
// its signed certificate to download.
type Retention struct {
	Hospital *hospital.Hospital
}

// runAction is the audit action of a completed retention run.
const runAction = "lifecycle.run"

// Table lists the runs, newest first.
func (r Retention) Table(ctx context.Context) (console.Table, error) {
	t := console.Table{Columns: []string{"col.run", "col.when", "col.outcome", "col.why"}}
	err := audit.Scan(ctx, r.Hospital.DB, r.Hospital.Audit.Chain(), 0, 0, func(e audit.Event) error {
		if e.Action != runAction {
			return nil
		}
		id := strings.TrimPrefix(e.Resource, "Certificate/")
		row := console.Row{State: "pass", Cells: []string{id, e.Time.Local().Format("2006-01-02 15:04"), e.Outcome, e.Reason}}
		if e.Outcome == audit.Success && id != e.Resource {
			row.Link = "/console/retention/certificate/" + id
		} else {
			row.State = "fail"
		}
		t.Rows = append([]console.Row{row}, t.Rows...)
		return nil
	})
	t.Note = "each certificate is signed with the hospital key: medsec lifecycle verify-certificate checks it"
	return t, err
}

// Patient serves the portal's record, copy and erasure through the door's
// patient path and the life-cycle engine.
type Patient struct {
	Door   *records.Door
	Engine *lifecycle.Engine
}

// Records reads the patient's own record (audited as the patient's
// export) and lists it line by line.
func (p Patient) Records(ctx context.Context, who records.PatientPrincipal) ([]console.RecordLine, error) {
	x, err := p.Door.PatientExport(ctx, who, "the patient viewed their own record in the portal")
	if err != nil {
		return nil, err
	}
	out := make([]console.RecordLine, 0, len(x.Records))
	for i := len(x.Records) - 1; i >= 0; i-- {
		out = append(out, line(x.Records[i]))
	}
	return out, nil
}

// line describes a record: an observation by its coding's display and
// value, anything else by the start of its text.
func line(r records.Record) console.RecordLine {
	l := console.RecordLine{Class: r.Class, Code: r.Code, Effective: r.Effective}
	var obs struct {
		ResourceType string `json:"resourceType"`
		Code         struct {
			Coding []struct {
				Display string `json:"display"`
			} `json:"coding"`
		} `json:"code"`
		ValueQuantity *struct {
			Value float64 `json:"value"`
			Unit  string  `json:"unit"`
		} `json:"valueQuantity"`
	}
	if json.Unmarshal(r.Payload, &obs) == nil && obs.ResourceType != "" {
		if len(obs.Code.Coding) > 0 {
			l.Display = obs.Code.Coding[0].Display
		}
		if q := obs.ValueQuantity; q != nil {
			l.Value = strings.TrimSpace(fmt.Sprintf("%g %s", q.Value, q.Unit))
		}
		if l.Value == "" {
			l.Value = obs.ResourceType
		}
		return l
	}
	l.Value = excerpt(string(r.Payload), 160)
	return l
}

func excerpt(s string, n int) string {
	if !utf8.ValidString(s) {
		return "—"
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Export is the patient's copy of their record as a FHIR Bundle.
func (p Patient) Export(ctx context.Context, who records.PatientPrincipal, reference string) ([]byte, error) {
	return p.Engine.ExportForPatient(ctx, who, reference)
}

// Erase carries out the patient's erasure request, or says which rule or
// hold keeps the data and until when.
func (p Patient) Erase(ctx context.Context, who records.PatientPrincipal, reference string) (console.ErasureAnswer, error) {
	if !who.Verified() {
		return console.ErasureAnswer{}, records.ErrUnauthenticated
	}
	id, err := p.Door.ResolvePseudonym(ctx, who.Pseudonym)
	if err != nil {
		return console.ErasureAnswer{}, err
	}
	e, err := p.Engine.Erase(ctx, lifecycle.PatientRequest{PatientID: id, Reference: reference, Received: "patient portal"})
	var refused *lifecycle.RefusedError
	if errors.As(err, &refused) {
		return console.ErasureAnswer{Refused: refused.Error()}, nil
	}
	if err != nil {
		return console.ErasureAnswer{}, err
	}
	return console.ErasureAnswer{Done: true, Records: e.Records}, nil
}
