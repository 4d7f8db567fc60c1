package records

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// testClock is a clock the tests move.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder decides by an allow list and keeps the questions it was asked.
type recorder struct {
	allow allowList
	mu    sync.Mutex
	asked []Question
}

func (r *recorder) Decide(ctx context.Context, q Question) Decision {
	r.mu.Lock()
	r.asked = append(r.asked, q)
	r.mu.Unlock()
	return r.allow.Decide(ctx, q)
}

func (f *fixture) allow(role, action, class string) {
	switch d := f.door.decider.(type) {
	case allowList:
		d[[3]string{role, action, class}] = true
	case *recorder:
		d.allow[[3]string{role, action, class}] = true
	}
}

// record makes the door's decider keep the questions it is asked.
func (f *fixture) record() {
	if d, ok := f.door.decider.(allowList); ok {
		f.door.decider = &recorder{allow: d}
	}
}

func (f *fixture) lastQuestion(t *testing.T) Question {
	t.Helper()
	r := f.door.decider.(*recorder)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.asked) == 0 {
		t.Fatal("the decider was never asked")
	}
	return r.asked[len(r.asked)-1]
}

func (f *fixture) lastEvent(t *testing.T) audit.Event {
	t.Helper()
	evs := f.events(t)
	return evs[len(evs)-1]
}

func TestConsentHistoryAndWithdrawal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.allow("administrative", ActionWrite, ClassConsent)
		f.allow("administrative", ActionRead, ClassConsent)
		reg := f.register(t, alice)
		clerk := Request{Who: f.clerk, Purpose: "HOPERAT"}
		c, err := f.door.RecordConsent(ctx, clerk, reg.ID, Consent{Purpose: "HRESCH", Permit: true,
			Classes: []string{"observation", "note"}, FormRef: "scan 2026-0142 signed by 김민수"})
		if err != nil {
			t.Fatal(err)
		}
		facts, _ := f.door.Facts(ctx, reg.ID)
		want := []ConsentTerm{{Purpose: "HRESCH", Permit: true, Classes: []string{"note", "observation"}, From: c.From}}
		if diff := cmp.Diff(want, facts.Consents, timeEqual); diff != "" {
			t.Errorf("terms after recording (-want +got):\n%s", diff)
		}
		f.clock.Advance(time.Minute)
		withdrawn, err := f.door.WithdrawConsent(ctx, clerk, c.ID, "patient called to withdraw")
		if err != nil {
			t.Fatal(err)
		}
		if !withdrawn.WithdrawnAt.Equal(f.clock.Now()) || withdrawn.WithdrawReason != "patient called to withdraw" {
			t.Errorf("withdrawn record %+v, want withdrawal now with the reason", withdrawn)
		}
		facts, _ = f.door.Facts(ctx, reg.ID)
		if len(facts.Consents) != 1 || !facts.Consents[0].Until.Equal(f.clock.Now()) {
			t.Errorf("terms after withdrawal %+v, want the permit ending now", facts.Consents)
		}
		if _, err := f.door.WithdrawConsent(ctx, clerk, c.ID, "again"); !errors.Is(err, ErrInvalid) {
			t.Errorf("second withdrawal: got %v, want ErrInvalid", err)
		}
		hist, err := f.door.Consents(ctx, clerk, reg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 || hist[0].FormRef != c.FormRef || hist[0].Active(f.clock.Now()) {
			t.Errorf("history %+v, want the one withdrawn record with its form reference", hist)
		}
		if _, err := f.door.RecordConsent(ctx, clerk, reg.ID, Consent{Purpose: "GOSSIP", Permit: true}); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown purpose: got %v, want ErrInvalid", err)
		}
		if _, err := f.door.RecordConsent(ctx, Request{Who: f.doc, Purpose: "TREAT"}, reg.ID, Consent{Purpose: "HRESCH", Permit: true}); !errors.Is(err, ErrDenied) {
			t.Errorf("physician records consent (not allowed by the test policy): got %v, want ErrDenied", err)
		}
	})
}

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestConsentNeverStoredInPlaintext(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.OpenSQLite(t))
	f.allow("administrative", ActionWrite, ClassConsent)
	reg := f.register(t, alice)
	if _, err := f.door.RecordConsent(ctx, Request{Who: f.clerk, Purpose: "HOPERAT"}, reg.ID, Consent{Purpose: "HRESCH", Permit: true, FormRef: "form of 김민수"}); err != nil {
		t.Fatal(err)
	}
	var form []byte
	if err := f.db.QueryRow(ctx, `SELECT form_ref FROM phi_consents`).Scan(&form); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(form), "김민수") {
		t.Error("the consent form reference is stored in plaintext")
	}
}

func TestBreakGlassSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.record()
		f.allow("nurse", ActionBreakGlass, ClassObservation)
		f.allow("nurse", ActionRead, ClassObservation)
		reg := f.register(t, alice)
		req := Request{Who: f.nurse, Purpose: "ETREAT", BreakGlass: "cardiac arrest on the corridor"}
		start := f.clock.Now()
		if _, err := f.door.Records(ctx, req, reg.ID, Filter{Class: ClassObservation}); err != nil {
			t.Fatal(err)
		}
		q := f.lastQuestion(t)
		if q.Emergency == nil || !q.Emergency.Started.Equal(start) || !q.Emergency.Expires.Equal(start.Add(BreakGlassLimit)) {
			t.Fatalf("question's emergency %+v, want a session from now for %s", q.Emergency, BreakGlassLimit)
		}
		first := q.Emergency.ID
		f.clock.Advance(time.Hour)
		if _, err := f.door.Records(ctx, req, reg.ID, Filter{Class: ClassObservation}); err != nil {
			t.Fatal(err)
		}
		if q := f.lastQuestion(t); q.Emergency == nil || q.Emergency.ID != first || !q.Emergency.Started.Equal(start) {
			t.Errorf("an hour later the question carries %+v, want the session opened at %v", q.Emergency, start)
		}
		if got := f.openAlerts(t, alerts.KindBreakGlass); len(got) != 1 || got[0].Patient != reg.Pseudonym || got[0].Subject != f.nurse.ID {
			t.Fatalf("alerts after two reads in one session: %+v, want one naming the nurse and the patient", got)
		}
		f.clock.Advance(BreakGlassLimit)
		if _, err := f.door.Records(ctx, req, reg.ID, Filter{Class: ClassObservation}); err != nil {
			t.Fatal(err)
		}
		if q := f.lastQuestion(t); q.Emergency.ID == first {
			t.Error("after four hours the expired session was used again")
		}
		if got := f.openAlerts(t, alerts.KindBreakGlass); len(got) != 2 {
			t.Errorf("a new session raised %d alerts in all, want 2", len(got))
		}
		var opened int
		for _, e := range f.events(t) {
			if e.Action == "observation.break_glass" && e.Outcome == audit.Success && slices.Contains(e.Flags, "break-glass") {
				opened++
			}
		}
		if opened != 2 {
			t.Errorf("%d break-glass openings audited, want 2", opened)
		}
		// The typed reason is sealed: it is in no audit event and no alert,
		// and the security officer opens it through the door, audited.
		for _, e := range f.events(t) {
			if strings.Contains(e.Reason+e.Resource+e.Source+string(e.Decision), "cardiac arrest") {
				t.Errorf("audit event %d holds the typed reason: %+v", e.Index, e)
			}
		}
		all, _ := f.door.alerts.List(ctx, alerts.Filter{})
		for _, a := range all {
			if strings.Contains(a.Summary+a.Detail, "cardiac arrest") {
				t.Errorf("alert %s holds the typed reason", a.ID)
			}
		}
		officer := staff(t, identity.NewDirectory(db), "officer", "security_officer")
		f.allow("security_officer", ActionRead, ClassAudit)
		got, err := f.door.BreakGlassReason(ctx, Request{Who: officer, Purpose: "HOPERAT"}, first)
		if err != nil || got != "cardiac arrest on the corridor" {
			t.Errorf("the officer's review: %q, %v", got, err)
		}
		if e := f.lastEvent(t); e.Action != "audit.read" || e.Actor != officer.ID || e.Resource != "BreakGlass/"+first {
			t.Errorf("last event %+v, want the officer's audited read of the reason", e)
		}
		if _, err := f.door.BreakGlassReason(ctx, Request{Who: f.nurse, Purpose: "TREAT"}, first); !errors.Is(err, ErrDenied) {
			t.Errorf("the nurse opening the review: got %v, want ErrDenied", err)
		}
	})
}

func TestBreakGlassRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.OpenSQLite(t))
	reg := f.register(t, alice)
	req := Request{Who: f.clerk, Purpose: "ETREAT", BreakGlass: "curious"}
	_, err := f.door.Records(ctx, req, reg.ID, Filter{Class: ClassObservation})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("clerk breaks the glass: got %v, want ErrDenied", err)
	}
	if e := f.lastEvent(t); e.Action != "observation.break_glass" || e.Outcome != audit.Denied || !slices.Contains(e.Flags, "break-glass") {
		t.Errorf("last event %+v, want the refused break-glass, flagged", e)
	}
	if got := f.openAlerts(t, alerts.KindBreakGlass); len(got) != 0 {
		t.Errorf("a refused break-glass opened a session with alert %+v", got)
	}
	var n int
	f.db.QueryRow(ctx, `SELECT COUNT(*) FROM phi_break_glass`).Scan(&n)
	if n != 0 {
		t.Errorf("%d break-glass sessions stored after a refusal, want 0", n)
	}
}

func (f *fixture) openAlerts(t *testing.T, kind string) []alerts.Alert {
	t.Helper()
	got, err := f.alerts.List(context.Background(), alerts.Filter{OpenOnly: true, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCareRelationshipChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.allow("physician", ActionWrite, ClassEncounter)
		f.allow("physician", ActionRead, ClassEncounter)
		reg := f.register(t, Patient{Name: "Jane Roe"})
		doc := Request{Who: f.doc, Purpose: "TREAT"}
		id, err := f.door.Admit(ctx, doc, reg.ID, Admission{Department: "cardiology", Ward: "3C", Attending: f.doc.ID,
			CareTeam: []string{f.nurse.ID, f.doc.ID}, Code: "IMP", Payload: []byte(`{"resourceType":"Encounter","status":"in-progress"}`)})
		if err != nil {
			t.Fatal(err)
		}
		facts, _ := f.door.Facts(ctx, reg.ID)
		want := PatientFacts{ID: reg.ID, Pseudonym: reg.Pseudonym, Department: "cardiology", Ward: "3C", Attending: f.doc.ID,
			CareTeam: uniqueSorted([]string{f.doc.ID, f.nurse.ID}), ActiveEncounter: true}
		facts.surname = nil
		if diff := cmp.Diff(want, *facts, cmp.AllowUnexported(PatientFacts{})); diff != "" {
			t.Errorf("facts after admission (-want +got):\n%s", diff)
		}
		if rec, err := f.door.Record(ctx, doc, id); err != nil || rec.Class != ClassEncounter {
			t.Errorf("encounter record %s: %+v, %v", id, rec, err)
		}
		if err := f.door.Discharge(ctx, doc, reg.ID); err != nil {
			t.Fatal(err)
		}
		facts, _ = f.door.Facts(ctx, reg.ID)
		if facts.ActiveEncounter || facts.Ward != "" || facts.Attending != f.doc.ID {
			t.Errorf("after discharge %+v, want no encounter, no ward, attending kept", facts)
		}
		if e := f.lastEvent(t); e.Action != "encounter.write" || !strings.Contains(e.Reason, "discharged") {
			t.Errorf("last event %+v, want the discharge", e)
		}
		err = f.door.SetCareTeam(ctx, Request{Who: f.nurse, Purpose: "TREAT"}, reg.ID, f.nurse.ID, nil)
		if !errors.Is(err, ErrDenied) {
			t.Errorf("nurse names herself attending (not allowed by the test policy): got %v", err)
		}
		if err := f.door.SetCareTeam(ctx, doc, reg.ID, f.doc.ID, []string{"a,b"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a staff id with a comma: got %v, want ErrInvalid", err)
		}
	})
}

func TestSameSurnameAndCoWorker(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.OpenSQLite(t))
	f.record()
	if err := f.door.SetStaffSurname(ctx, f.doc, f.doc.ID, "kim"); err != nil {
		t.Fatal(err)
	}
	if err := f.door.SetStaffSurname(ctx, f.nurse, f.doc.ID, "Lee"); !errors.Is(err, ErrDenied) {
		t.Errorf("nurse sets the physician's surname: got %v, want ErrDenied", err)
	}
	tests := []struct {
		name          string
		patient       Patient
		same, coWoker bool
	}{
		{"namesake", Patient{Name: "Minsu Kim"}, true, false},
		{"other surname", Patient{Name: "Jane Roe"}, false, false},
		{"co-worker", Patient{Name: "Jane Roe", StaffMember: true}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := f.register(t, tt.patient)
			if _, err := f.door.Patient(ctx, Request{Who: f.doc, Purpose: "TREAT"}, reg.ID); err != nil {
				t.Fatal(err)
			}
			q := f.lastQuestion(t)
			if q.SameSurname != tt.same || q.CoWorker != tt.coWoker {
				t.Errorf("same surname %v, co-worker %v; want %v, %v", q.SameSurname, q.CoWorker, tt.same, tt.coWoker)
			}
		})
	}
}

func TestSurnameOf(t *testing.T) {
	tests := map[string]string{
		"김민수": "김", "남궁민수": "남궁", "김 민수": "김", "Minsu Kim": "Kim", "Roe, Jane": "Roe", "Madonna": "Madonna", "  ": "",
	}
	for in, want := range tests {
		if got := SurnameOf(in); got != want {
			t.Errorf("SurnameOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPatientPortal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.allow("administrative", ActionWrite, ClassConsent)
		reg := f.register(t, alice)
		other := f.register(t, Patient{Name: "Jane Roe"})
		clerk := Request{Who: f.clerk, Purpose: "TREAT"}
		if _, err := f.door.Patient(ctx, Request{Who: f.doc, Purpose: "TREAT"}, reg.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.door.Patient(ctx, Request{Who: f.doc, Purpose: "TREAT"}, other.ID); err != nil {
			t.Fatal(err)
		}
		mine, err := f.door.RecordConsent(ctx, Request{Who: f.clerk, Purpose: "HOPERAT"}, reg.ID, Consent{Purpose: "HRESCH", Permit: true})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := f.door.RecordConsent(ctx, Request{Who: f.clerk, Purpose: "HOPERAT"}, other.ID, Consent{Purpose: "HRESCH", Permit: true})
		if err != nil {
			t.Fatal(err)
		}
		token, _, err := f.door.IssuePortalAccess(ctx, clerk, reg.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.door.AuthenticatePatient(ctx, token, "203.0.113.9")
		if err != nil {
			t.Fatal(err)
		}
		hist, err := f.door.AccessHistory(ctx, p, AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var sawRead bool
		for _, e := range hist {
			if e.Patient != reg.Pseudonym {
				t.Errorf("the patient's history holds another patient's event %+v", e)
			}
			sawRead = sawRead || (e.Actor == f.doc.ID && e.Action == "demographics.read")
		}
		if !sawRead {
			t.Errorf("history %+v misses the physician's read", hist)
		}
		if _, err := f.door.PatientWithdrawConsent(ctx, p, theirs.ID, "not mine"); !errors.Is(err, ErrNotFound) {
			t.Errorf("withdrawing another patient's consent: got %v, want ErrNotFound", err)
		}
		if _, err := f.door.PatientWithdrawConsent(ctx, p, mine.ID, "changed my mind"); err != nil {
			t.Fatal(err)
		}
		if facts, _ := f.door.Facts(ctx, reg.ID); facts.Consents[0].Until.IsZero() {
			t.Error("the patient's withdrawal did not end the permit")
		}
		given, err := f.door.PatientRecordConsent(ctx, p, Consent{Purpose: "MLTRAINING", Permit: true})
		if err != nil {
			t.Fatal(err)
		}
		if given.RecordedBy != "patient:"+reg.Pseudonym || given.PatientID != reg.ID {
			t.Errorf("the patient's own consent %+v", given)
		}
		var permits bool
		facts, _ := f.door.Facts(ctx, reg.ID)
		for _, c := range facts.Consents {
			permits = permits || (c.Purpose == "MLTRAINING" && c.Permit)
		}
		if !permits {
			t.Errorf("the patient's consent is not among the terms the policy weighs: %+v", facts.Consents)
		}
		if e := f.lastEvent(t); e.Action != "consent.write" || e.Actor != "patient:"+reg.Pseudonym || e.Patient != reg.Pseudonym {
			t.Errorf("last event %+v, want the patient's consent, audited", e)
		}
		if _, err := f.door.PatientRecordConsent(ctx, PatientPrincipal{}, Consent{Purpose: "HRESCH", Permit: true}); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("an unauthenticated patient consent: got %v", err)
		}
		f.clock.Advance(time.Hour)
		if _, err := f.door.AuthenticatePatient(ctx, token, ""); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("expired portal token: got %v, want ErrUnauthenticated", err)
		}
		if _, err := f.door.AuthenticatePatient(ctx, "mpp1_"+strings.Repeat("A", 43), ""); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("forged portal token: got %v, want ErrUnauthenticated", err)
		}
	})
}

func TestAuditEventsNeedDecision(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.OpenSQLite(t))
	reg := f.register(t, alice)
	if _, err := f.door.AuditEvents(ctx, Request{Who: f.doc, Purpose: "HOPERAT"}, AuditFilter{}); !errors.Is(err, ErrDenied) {
		t.Errorf("physician reads the access log: got %v, want ErrDenied", err)
	}
	f.allow("physician", ActionSearch, ClassAudit)
	evs, err := f.door.AuditEvents(ctx, Request{Who: f.doc, Purpose: "HOPERAT"}, AuditFilter{Patient: reg.ID, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("got %d events, want the newest 2", len(evs))
	}
	for _, e := range evs {
		if e.Patient != reg.Pseudonym {
			t.Errorf("filtered by patient, got %+v", e)
		}
	}
}
