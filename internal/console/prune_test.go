package console

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/records"
)

// registerFormer registers a patient last seen six years ago, whom the
// retention schedule lets go on request.
func (f *fixture) registerFormer(t *testing.T) records.Patient {
	t.Helper()
	ctx := context.Background()
	kim := f.staff["dr.kim"].who
	p, err := f.h.Door.RegisterPatient(ctx, records.Request{Who: f.staff["reception"].who, Purpose: "TREAT"}, records.Patient{
		Name: "최지우", RRN: "800101-2345678", MRN: "MRN-FORMER", Phone: "010-5555-0999", BirthDate: "1980-01-01", Sex: "female",
		Department: "internal_medicine", Ward: "5A", Attending: kim.ID, CareTeam: []string{kim.ID}, ActiveEncounter: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := f.clock.now().AddDate(-6, 0, 0)
	rec := records.Record{Class: records.ClassObservation, Code: "8867-4", Effective: seen, Source: "staff:dr.kim",
		Payload: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":70,"unit":"/min"}}`)}
	if _, err := f.h.Door.AddRecords(ctx, records.Request{Who: kim, Purpose: "TREAT"}, p.ID, []records.Record{rec}); err != nil {
		t.Fatal(err)
	}
	return p
}

// engine is the life-cycle engine as medsec serve assembles it, with the
// console connected as a place that acts on erasures.
func (f *fixture) engine(t *testing.T) *lifecycle.Engine {
	t.Helper()
	schedule, err := lifecycle.LoadSchedule(f.h.Config.Dir(), f.h.Config.Jurisdiction)
	if err != nil {
		t.Fatal(err)
	}
	e, err := lifecycle.New(context.Background(), lifecycle.Config{DB: f.h.DB, Door: f.h.Door, Audit: f.h.Audit, Keys: f.h.Keys,
		HospitalID: f.h.Config.Hospital.ID, Schedule: schedule, Now: f.clock.now, Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.AddSource(f.con.Traces())
	return e
}

// TestErasureTakesConsoleData erases a patient on request through the
// life-cycle engine: the console's tickets, activation, portal account and
// sessions of the patient go with the record (and nothing of anyone
// else's), and the deletion is audited by pseudonym.
func TestErasureTakesConsoleData(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		f := newFixtureOn(t, b)
		ctx := context.Background()
		former := f.registerFormer(t)
		desk := f.principal(t, "reception")
		if _, err := f.con.IssueTicketFor(ctx, desk, "internal_medicine", former.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.con.IssueTicket(ctx, desk, "internal_medicine", f.mrns[1]); err != nil {
			t.Fatal(err)
		}
		a, err := f.con.IssueActivationFor(ctx, desk, former.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.con.Activate(ctx, a.Code, "kimminsu85", patientPassword, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.con.PatientLogin(ctx, "kimminsu85", patientPassword, "test"); err != nil {
			t.Fatal(err)
		}
		subject := lifecycle.Subject{PatientID: former.ID, Pseudonym: former.Pseudonym}
		locs, err := f.con.Traces().Locations(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := placesOf(locs), []string{"waiting-room call tickets", "patient portal account", "portal activation codes"}; !cmp.Equal(got, want) {
			t.Errorf("the data map's console places before the erasure: %v, want %v", got, want)
		}

		if _, err := f.engine(t).Erase(ctx, lifecycle.PatientRequest{PatientID: former.ID, Reference: "ER-TEST-1", Received: "staff:reception"}); err != nil {
			t.Fatalf("erase: %v", err)
		}
		if locs, err := f.con.Traces().Locations(ctx, subject); err != nil || len(locs) != 0 {
			t.Errorf("console places after the erasure: %v, %v; want none", placesOf(locs), err)
		}
		if _, err := f.con.PatientLogin(ctx, "kimminsu85", patientPassword, "test"); !errors.Is(err, ErrPatientCredentials) {
			t.Errorf("sign-in after the erasure: %v, want no such account", err)
		}
		for table, want := range map[string]int{"console_patient_accounts": 0, "console_patient_sessions": 0, "console_activations": 0, "console_tickets": 1} {
			if got := countRows(t, f, table); got != want {
				t.Errorf("%s on %s: %d rows after the erasure, want %d", table, b.Name, got, want)
			}
		}
		if !auditHasPatient(t, f, "console.erase", former.Pseudonym, "deleted 1 call tickets, 1 activation codes, 1 portal accounts with 1 sessions") {
			t.Errorf("the console's erasure is not in the audit log under the patient's pseudonym")
		}
	})
}

func placesOf(locs []lifecycle.Location) []string {
	var out []string
	for _, l := range locs {
		if l.Kind != KindConsole || l.Count != 1 {
			return append(out, "unexpected: "+l.Kind+" "+l.Place)
		}
		out = append(out, l.Place)
	}
	return out
}

func countRows(t *testing.T, f *fixture, table string) int {
	t.Helper()
	var n int
	if err := f.h.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func auditHasPatient(t *testing.T, f *fixture, action, patient, reason string) bool {
	t.Helper()
	n := 0
	err := audit.Scan(context.Background(), f.h.DB, f.h.Audit.Chain(), 0, 0, func(e audit.Event) error {
		if e.Action == action && e.Patient == patient && strings.Contains(e.Reason, reason) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func countActions(t *testing.T, f *fixture, action string) int {
	t.Helper()
	n := 0
	err := audit.Scan(context.Background(), f.h.DB, f.h.Audit.Chain(), 0, 0, func(e audit.Event) error {
		if e.Action == action {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPrune: a patient destroyed outside an erasure request (the door's
// DestroyPatient, a retention run) loses the console's data at the next
// prune; tickets go after their day, activations once used, sessions once
// ended; a prune with nothing to do writes nothing.
func TestPrune(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		f := newFixtureOn(t, b)
		ctx := context.Background()
		desk := f.principal(t, "reception")
		for _, mrn := range f.mrns[:2] {
			if _, err := f.con.IssueTicket(ctx, desk, "internal_medicine", mrn); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.con.IssueActivation(ctx, desk, f.mrns[2]); err != nil { // unused, valid for a week
			t.Fatal(err)
		}
		a, err := f.con.IssueActivation(ctx, desk, f.mrns[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := f.con.Activate(ctx, a.Code, "minsu", patientPassword, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.con.PatientLogin(ctx, "minsu", patientPassword, "test"); err != nil {
			t.Fatal(err)
		}
		officer := f.principal(t, "officer.han")
		if err := f.h.Door.DestroyPatient(ctx, records.Request{Who: officer, Purpose: "HOPERAT"}, f.patients[0].ID, "REQUEST test"); err != nil {
			t.Fatal(err)
		}

		got, err := f.con.Prune(ctx)
		if want := (Pruned{Activations: 1, Patients: 1}); err != nil || got != want {
			t.Errorf("prune on the same day = %+v, %v; want %+v", got, err, want)
		}
		if n := countRows(t, f, "console_patient_accounts") + countRows(t, f, "console_patient_sessions"); n != 0 {
			t.Errorf("the destroyed patient's portal account or sessions are left: %d rows", n)
		}
		q, err := f.con.queue(ctx, "internal_medicine")
		if err != nil || len(q.Waiting) != 1 || q.Waiting[0].Pseudonym != f.patients[1].Pseudonym {
			t.Errorf("queue after the prune = %+v, %v; want only the living patient's ticket", q, err)
		}
		if !auditHasPatient(t, f, "console.erase", f.patients[0].Pseudonym, "record was destroyed") {
			t.Errorf("the deletion of the destroyed patient's console data is not audited")
		}

		f.clock.add(25 * time.Hour)
		got, err = f.con.Prune(ctx)
		if want := (Pruned{Tickets: 1}); err != nil || got != want {
			t.Errorf("prune the next day = %+v, %v; want %+v", got, err, want)
		}
		if n := countRows(t, f, "console_tickets"); n != 0 {
			t.Errorf("%d tickets outlived their day", n)
		}
		events := countActions(t, f, "console.prune")
		if got, err := f.con.Prune(ctx); err != nil || got != (Pruned{}) {
			t.Errorf("prune with nothing to do = %+v, %v", got, err)
		}
		if n := countActions(t, f, "console.prune"); n != events {
			t.Errorf("a prune with nothing to do wrote %d audit events", n-events)
		}
	})
}

func TestUntilAfterMidnight(t *testing.T) {
	seoul := time.FixedZone("KST", 9*3600)
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{time.Date(2026, 3, 2, 23, 0, 0, 0, seoul), time.Hour + time.Minute},
		{time.Date(2026, 3, 2, 0, 0, 0, 0, seoul), 24*time.Hour + time.Minute},
		{time.Date(2026, 12, 31, 12, 30, 0, 0, time.UTC), 11*time.Hour + 31*time.Minute},
	} {
		if got := untilAfterMidnight(tc.now); got != tc.want {
			t.Errorf("untilAfterMidnight(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}
