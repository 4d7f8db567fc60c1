package sections

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
)

var alice = records.Patient{Name: "김민수", RRN: "900101-1234568", Phone: "010-1234-5678", BirthDate: "1990-01-01", Sex: "male", MRN: "MRN-000001"}

func TestLedgerAndRetention(t *testing.T) {
	ctx := context.Background()
	s := lifecycletest.New(t, lifecycletest.SQLite, nil)
	p := s.Register(t, alice)
	s.Add(t, p.ID, records.ClassMedication, 1, s.Clock.Now())
	s.AddRecipient(t, "pharmacy-a", provision.KindPharmacy, provision.Agreement{Purposes: []string{"TREAT"},
		Classes: []string{"demographics", "medication"}, Form: bundle.Identified, Retention: lifecycle.Period{Days: 30}, Reference: "OCS-1"})
	if _, err := s.Provision.Provide(ctx, provision.Request{Request: records.Request{Who: s.Doctor, Purpose: "TREAT"}, Recipient: "pharmacy-a",
		PatientID: p.ID, Classes: []string{"medication", "demographics"}}); err != nil {
		t.Fatal(err)
	}
	secs := New(s.H, s.Engine, s.Provision, nil)
	ledger := secs.Ledger.(Ledger)
	ledger.Now = s.Clock.Now
	tbl, err := ledger.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Rows) != 1 || tbl.Rows[0].Cells[2] != p.Pseudonym || tbl.Rows[0].Cells[7] != provision.StateOpen {
		t.Fatalf("ledger rows = %+v, want one open package for %s", tbl.Rows, p.Pseudonym)
	}
	noPHI(t, tbl)
	ledger.Now = func() time.Time { return s.Clock.Now().Add(31 * 24 * time.Hour) }
	if tbl, _ := ledger.Table(ctx); tbl.Rows[0].State != "fail" || tbl.Rows[0].Cells[7] != provision.StateOverdue {
		t.Errorf("a package past its deadline shows as %q/%q, want overdue", tbl.Rows[0].State, tbl.Rows[0].Cells[7])
	}

	res, err := s.Engine.Run(ctx, lifecycle.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := secs.Retention.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs.Rows) != 1 || runs.Rows[0].Cells[0] != res.Certificate.ID || runs.Rows[0].Link != "/console/retention/certificate/"+res.Certificate.ID {
		t.Fatalf("retention rows = %+v, want the run %s with its certificate", runs.Rows, res.Certificate.ID)
	}
	signed, err := secs.Certificates.Certificate(ctx, res.Certificate.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lifecycle.VerifyCertificate(signed, s.Engine.Signer().VerifierKey()); err != nil {
		t.Errorf("downloaded certificate does not verify: %v", err)
	}
}

func noPHI(t *testing.T, tbl interface{}) {
	t.Helper()
	b, _ := json.Marshal(tbl)
	for _, v := range []string{alice.Name, alice.RRN, alice.Phone, alice.MRN} {
		if strings.Contains(string(b), v) {
			t.Errorf("table holds %q", v)
		}
	}
}

func TestPatientServices(t *testing.T) {
	ctx := context.Background()
	s := lifecycletest.New(t, lifecycletest.SQLite, nil)
	p := s.Register(t, alice)
	s.Add(t, p.ID, records.ClassObservation, 2, s.Clock.Now().Add(-time.Hour))
	who := s.Portal(t, p.ID)
	svc := New(s.H, s.Engine, s.Provision, nil).Patient
	lines, err := svc.Records(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Class != records.ClassObservation || !strings.HasSuffix(lines[0].Value, "/min") {
		t.Errorf("records = %+v, want two observations with their values", lines)
	}
	b, err := svc.Export(ctx, who, "PORTAL-COPY-1")
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []any  `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil || bundle.ResourceType != "Bundle" || len(bundle.Entry) < 3 {
		t.Errorf("export = %s…, %v; want a FHIR Bundle with the patient and two observations", b[:min(len(b), 80)], err)
	}
	ans, err := svc.Erase(ctx, who, "PORTAL-ERASE-1")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Done || !strings.Contains(ans.Refused, "refused") {
		t.Errorf("erasure under the kr schedule = %+v, want a refusal naming the rule", ans)
	}
}

func TestPatientErasureDone(t *testing.T) {
	ctx := context.Background()
	kr, _, err := lifecycle.Profile("kr")
	if err != nil {
		t.Fatal(err)
	}
	for i := range kr.Rules {
		kr.Rules[i].Mandatory = false // this hospital keeps nothing by law
	}
	s := lifecycletest.New(t, lifecycletest.SQLite, &kr)
	p := s.Register(t, alice)
	s.Add(t, p.ID, records.ClassObservation, 2, s.Clock.Now())
	ans, err := New(s.H, s.Engine, s.Provision, nil).Patient.Erase(ctx, s.Portal(t, p.ID), "PORTAL-ERASE-2")
	if err != nil {
		t.Fatal(err)
	}
	if !ans.Done || ans.Records != 2 {
		t.Errorf("erasure = %+v, want done with 2 records", ans)
	}
	if _, err := s.Door.Patient(ctx, records.Request{Who: s.Doctor, Purpose: "TREAT"}, p.ID); err == nil {
		t.Errorf("the erased patient can still be read")
	}
}

func TestDatasetsTable(t *testing.T) {
	ctx := context.Background()
	s := lifecycletest.New(t, lifecycletest.SQLite, nil)
	if secs := New(s.H, s.Engine, s.Provision, nil); secs.Datasets != nil {
		t.Error("without a register the datasets page must say it is not available")
	}
	ds, err := dataset.New(ctx, dataset.Config{DB: s.H.DB, Door: s.H.Door, Keys: s.H.Keys, Audit: s.H.Audit, Alerts: s.H.Alerts,
		HospitalID: s.H.Config.Hospital.ID})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := New(s.H, s.Engine, s.Provision, ds).Datasets.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Rows) != 0 || !strings.HasPrefix(tbl.Note, "0 datasets") || len(tbl.Columns) != 7 {
		t.Errorf("empty register: %+v", tbl)
	}
}
