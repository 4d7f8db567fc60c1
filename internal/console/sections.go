package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/records"
)

// Sections are the console pages and portal services of capabilities that
// land separately (the provision ledger, retention, AI datasets, the
// patient's requests). Each is a small interface the capability fills; a
// nil one is shown honestly as "not available yet".
type Sections struct {
	// Ledger lists the provision ledger: what went to whom, its deadline,
	// its receipt.
	Ledger TableSource
	// Retention lists retention runs and their destruction certificates.
	Retention TableSource
	// Certificates hands out a signed destruction certificate by id.
	Certificates CertificateSource
	// Datasets lists the de-identified AI datasets and their lineage.
	Datasets TableSource
	// Patient serves the portal's "my records", the copy of the record and
	// the erasure request.
	Patient PatientServices
}

// TableSource fills a console page with a table.
type TableSource interface {
	Table(ctx context.Context) (Table, error)
}

// Table is a section's content: headings and rows of text. Headings are
// catalog keys or plain words.
type Table struct {
	Columns []string
	Rows    []Row
	// Note is one line under the table (plain words).
	Note string
}

// Row is one line of a table. State colours it (pass, warn, fail, or
// ""); Link, when set, is a console path offered as a download.
type Row struct {
	Cells []string
	State string
	Link  string
}

// CertificateSource returns a signed destruction certificate.
type CertificateSource interface {
	Certificate(ctx context.Context, id string) ([]byte, error)
}

// PatientServices are what the portal offers beyond the door's own patient
// path: the record itself, a copy to download, and erasure.
type PatientServices interface {
	// Records lists the patient's own records (an audited read).
	Records(ctx context.Context, p records.PatientPrincipal) ([]RecordLine, error)
	// Export is the patient's copy of their record as a FHIR Bundle (JSON).
	Export(ctx context.Context, p records.PatientPrincipal, reference string) ([]byte, error)
	// Erase carries out or refuses the patient's erasure request.
	Erase(ctx context.Context, p records.PatientPrincipal, reference string) (ErasureAnswer, error)
}

// RecordLine is one of the patient's records as the portal lists it.
type RecordLine struct {
	Class, Code, Display, Value string
	Effective                   time.Time
}

// ErasureAnswer is the outcome of an erasure request in words for the
// patient.
type ErasureAnswer struct {
	Done    bool
	Records int
	// Refused says which rule keeps the data and until when.
	Refused string
}

type sectionData struct {
	Key       string // nav key
	Available bool
	Table     Table
}

func (c *Console) tablePage(w http.ResponseWriter, r *http.Request, pg *page, key string, src TableSource) {
	d := sectionData{Key: key, Available: src != nil}
	if src != nil {
		t, err := src.Table(r.Context())
		if err != nil {
			c.fail(w, r, pg, err)
			return
		}
		d.Table = t
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "section", pg)
}

func (c *Console) ledgerPage(w http.ResponseWriter, r *http.Request, pg *page) {
	c.tablePage(w, r, pg, "ledger", c.sections.Ledger)
}

func (c *Console) retentionPage(w http.ResponseWriter, r *http.Request, pg *page) {
	c.tablePage(w, r, pg, "retention", c.sections.Retention)
}

func (c *Console) datasetsPage(w http.ResponseWriter, r *http.Request, pg *page) {
	c.tablePage(w, r, pg, "datasets", c.sections.Datasets)
}

// certificate downloads a signed destruction certificate.
func (c *Console) certificate(w http.ResponseWriter, r *http.Request, pg *page) {
	if c.sections.Certificates == nil {
		c.fail(w, r, pg, errNotFound)
		return
	}
	id := chi.URLParam(r, "id")
	b, err := c.sections.Certificates.Certificate(r.Context(), id)
	if err != nil {
		c.fail(w, r, pg, fmt.Errorf("%w: %v", errNotFound, err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "destruction-certificate-"+safeName(id)+".txt"))
	w.Write(b)
}

// safeName keeps letters, digits, - and _ of an id for a file name.
func safeName(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			out = append(out, r)
		}
	}
	return string(out)
}

// devicesPage lists the device and gateway registry (no patient data:
// devices are bound to pseudonyms).
func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request, pg *page) {
	if c.devices == nil {
		c.tablePage(w, r, pg, "devices", nil)
		return
	}
	c.tablePage(w, r, pg, "devices", registryTable{c.devices, c.now})
}

type registryTable struct {
	a   *devices.Authority
	now func() time.Time
}

func (t registryTable) Table(ctx context.Context) (Table, error) {
	ds, err := t.a.Devices(ctx, devices.Filter{})
	if err != nil {
		return Table{}, err
	}
	out := Table{Columns: []string{"col.serial", "col.kind", "col.model", "col.patient", "col.status", "col.certificate", "col.enrolled"}}
	for _, d := range ds {
		state := string(d.Status)
		if d.Status == devices.StatusActive && d.NotAfter.Before(t.now()) {
			state = "warn"
		}
		out.Rows = append(out.Rows, Row{State: state, Cells: []string{d.Serial, string(d.Kind), d.Model, d.Patient, string(d.Status),
			d.NotAfter.Local().Format("2006-01-02 15:04"), dayOf(d.EnrolledAt)}})
	}
	return out, nil
}
