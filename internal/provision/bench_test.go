package provision_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/medsec/medsec/internal/benchref"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
)

// A typical referral: the patient's demographics, 20 vital signs, 3
// progress notes of about a kilobyte and 5 medication orders (about 15 KB
// of FHIR JSON). Run with:
//
//	go test ./internal/provision -run '^$' -bench . -benchtime 3s

func referralExtract() records.Extract {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	x := records.Extract{PatientID: "pt_bench", Pseudonym: "P-bench", Patient: &alice}
	for i := range 20 {
		at := now.Add(-time.Duration(i) * 6 * time.Hour)
		x.Records = append(x.Records, records.Record{ID: fmt.Sprintf("rec_o%02d", i), Class: "observation", Code: "8867-4", Effective: at,
			Payload: lifecycletest.Observation(at, 60+i)})
	}
	note := strings.Repeat("Stable overnight; continue current medication and review in clinic. ", 15)
	for i := range 3 {
		x.Records = append(x.Records, records.Record{ID: fmt.Sprintf("rec_n%02d", i), Class: "note", Code: "11506-3", Effective: now, Payload: []byte(note)})
	}
	for i := range 5 {
		x.Records = append(x.Records, records.Record{ID: fmt.Sprintf("rec_m%02d", i), Class: "medication", Code: "C09AA05", Effective: now,
			Payload: []byte(`{"resourceType":"MedicationRequest","status":"active","intent":"order","authoredOn":"2026-03-02","medicationCodeableConcept":{"coding":[{"system":"http://www.whocc.no/atc","code":"C09AA05","display":"ramipril"}]},"dosageInstruction":[{"text":"5 mg once daily"}]}`)})
	}
	return x
}

func reportLimits(b *testing.B, l benchref.Limits) {
	b.ReportMetric(l.SHA256MBps, "sha256-MB/s")
	b.ReportMetric(l.Ed25519VerifyPerS, "ed25519-verify/s")
}

// BenchmarkSealReferral renders the bundle, signs it twice (content and
// header) and encrypts it to the recipient: packages sealed per second on
// one core, without the database.
func BenchmarkSealReferral(b *testing.B) {
	limits := benchref.Measure(300 * time.Millisecond)
	hospital, _ := lifecycle.NewSigner("medsec-hospital-bench", make([]byte, 32))
	id, _ := age.GenerateX25519Identity()
	x := referralExtract()
	size := 0
	for b.Loop() {
		res, err := bundle.Build(x, bundle.Options{ID: "pkg_bench", Form: bundle.Identified})
		if err != nil {
			b.Fatal(err)
		}
		c := provision.Content{Package: "pkg_bench", From: hospital.Name(), To: "hospital-b", Purpose: "TREAT", Form: bundle.Identified, Bundle: res.JSON}
		pkg, _, err := provision.Seal(c, id.Recipient(), hospital, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		size = len(pkg)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packages/s")
	b.ReportMetric(float64(size), "bytes/package")
	reportLimits(b, limits)
}

// BenchmarkOpenReferral is the recipient's side: verify both signatures,
// check the digest, decrypt.
func BenchmarkOpenReferral(b *testing.B) {
	limits := benchref.Measure(300 * time.Millisecond)
	hospital, _ := lifecycle.NewSigner("medsec-hospital-bench", make([]byte, 32))
	id, _ := age.GenerateX25519Identity()
	res, _ := bundle.Build(referralExtract(), bundle.Options{ID: "pkg_bench", Form: bundle.Identified})
	c := provision.Content{Package: "pkg_bench", From: hospital.Name(), To: "hospital-b", Purpose: "TREAT", Form: bundle.Identified, Bundle: res.JSON}
	pkg, _, _ := provision.Seal(c, id.Recipient(), hospital, time.Now())
	for b.Loop() {
		if _, err := provision.Open(pkg, hospital.Verifier(), id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packages/s")
	reportLimits(b, limits)
}

// BenchmarkProvideReferral is the whole provision on SQLite under the
// shipped policy: four decided exports with their audit events, the
// records unsealed, the package sealed, the ledger entry and disclosure
// event committed.
func BenchmarkProvideReferral(b *testing.B) {
	limits := benchref.Measure(300 * time.Millisecond)
	s := lifecycletest.New(b, lifecycletest.SQLite, nil)
	p := s.Register(b, alice)
	x := referralExtract()
	for _, class := range []string{"observation", "note", "medication"} {
		var recs []records.Record
		for _, r := range x.Records {
			if r.Class == class {
				recs = append(recs, r)
			}
		}
		if _, err := s.Door.AddRecords(context.Background(), records.Request{Who: s.Doctor, Purpose: "TREAT"}, p.ID, recs); err != nil {
			b.Fatal(err)
		}
	}
	s.AddRecipient(b, "hospital-b", provision.KindHospital, provision.Agreement{Purposes: []string{"TREAT"},
		Classes: []string{"demographics", "observation", "note", "medication"}, Form: bundle.Identified, Retention: lifecycle.Period{Years: 1}})
	req := provision.Request{Request: records.Request{Who: s.Doctor, Purpose: "TREAT"}, Recipient: "hospital-b", PatientID: p.ID,
		Classes: []string{"demographics", "observation", "note", "medication"}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Provision.Provide(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packages/s")
	reportLimits(b, limits)
}
