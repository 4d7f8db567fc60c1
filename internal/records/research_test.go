package records

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	policy "github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// cedarDecider puts the shipped Cedar policy behind the door, as package
// hospital does, with the parts a research read weighs: role, MFA,
// purpose, class and the patient's consents.
type cedarDecider struct {
	engine *policy.Engine
	now    func() time.Time
}

func (c cedarDecider) Decide(_ context.Context, q Question) Decision {
	r := policy.Request{
		Staff:  policy.Staff{ID: q.Who.ID, Role: policy.Role(q.Who.Role), Department: q.Who.Department, MFA: q.Who.MFA},
		Action: policy.Action(q.Action), DataClass: policy.DataClass(q.Class), Purpose: policy.Purpose(q.Purpose), Now: c.now(),
		Patient: policy.Patient{ID: "*"},
	}
	if f := q.Patient; f != nil {
		r.Patient = policy.Patient{ID: f.ID, Department: f.Department, Ward: f.Ward, Attending: f.Attending, CareTeam: f.CareTeam, ActiveEncounter: f.ActiveEncounter}
		for _, t := range f.Consents {
			pc := policy.Consent{Purpose: policy.Purpose(t.Purpose), Permit: t.Permit, From: t.From, Until: t.Until}
			for _, cl := range t.Classes {
				pc.DataClasses = append(pc.DataClasses, policy.DataClass(cl))
			}
			r.Patient.Consents = append(r.Patient.Consents, pc)
		}
	}
	d := c.engine.Decide(r)
	return Decision{Allow: d.Allow, Flags: d.Flags, Policies: d.Policies, Reasons: append(d.Reasons, d.Errors...)}
}

// researchFixture is the door under the real policy with a researcher and
// a security officer (signed in with a second factor) and five patients of
// internal medicine with encounters, one of surgery.
type researchFixture struct {
	*fixture
	researcher, officer identity.Principal
	pts                 map[string]Patient
	consents            map[string]Consent
	start               time.Time
}

func newResearchFixture(t *testing.T, db *store.DB) *researchFixture {
	t.Helper()
	f := newFixture(t, db)
	engine, err := policy.LoadShipped()
	if err != nil {
		t.Fatal(err)
	}
	f.door.decider = cedarDecider{engine: engine, now: f.clock.Now}
	dir := identity.NewDirectory(db)
	dir.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	rf := &researchFixture{fixture: f, pts: map[string]Patient{}, consents: map[string]Consent{}, start: f.clock.Now()}
	rf.researcher = staff(t, dir, "researcher", identity.RoleResearcher)
	rf.officer = staff(t, dir, "officer", identity.RoleSecurityOfficer)
	rf.officer.MFA = true
	ctx := context.Background()
	admin := Request{Who: f.clerk, Purpose: "HOPERAT"}
	plan := []struct {
		name, dept, consent string
		code                string
	}{
		{"permits", "internal_medicine", "MLTRAINING", "E11.9"},
		{"none", "internal_medicine", "", "E11.9"},
		{"research-only", "internal_medicine", "HRESCH", "I10"},
		{"withdraws", "internal_medicine", "MLTRAINING", "E11.9"},
		{"other-code", "internal_medicine", "MLTRAINING", "J18.9"},
		{"surgery", "surgery", "MLTRAINING", "E11.9"},
	}
	for i, p := range plan {
		in := alice
		in.Name, in.MRN, in.Department, in.Attending = "환자"+p.name, "MRN-R"+p.name, p.dept, f.doc.ID
		in.RRN, in.Phone = "", ""
		reg := f.register(t, in)
		rf.pts[p.name] = reg
		rec := Record{Class: ClassEncounter, Code: p.code, Effective: rf.start.Add(-time.Duration(i+1) * time.Hour),
			Payload: []byte(`{"resourceType":"Encounter","reason":"` + p.code + `"}`)}
		if _, err := f.door.AddRecords(ctx, Request{Who: f.doc, Purpose: "TREAT"}, reg.ID, []Record{rec}); err != nil {
			t.Fatalf("add encounter of %s: %v", p.name, err)
		}
		if p.consent == "" {
			continue
		}
		c, err := f.door.RecordConsent(ctx, admin, reg.ID, Consent{Purpose: p.consent, Permit: true, From: rf.start.Add(-24 * time.Hour)})
		if err != nil {
			t.Fatalf("record consent of %s: %v", p.name, err)
		}
		rf.consents[p.name] = c
	}
	if _, err := f.door.WithdrawConsent(ctx, admin, rf.consents["withdraws"].ID, "changed their mind"); err != nil {
		t.Fatal(err)
	}
	return rf
}

func (rf *researchFixture) names(ms []ResearchMember) []string {
	var out []string
	for _, m := range ms {
		for name, p := range rf.pts {
			if p.ID == m.ID {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

var diabetesQuery = ResearchQuery{Departments: []string{"internal_medicine"}, Classes: []string{ClassEncounter},
	Codes: []string{"E11.9", "I10"}, Reason: "dataset ds_test diabetes"}

func TestResearchCohortKeepsConsentingPatients(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rf := newResearchFixture(t, db)
		ctx := context.Background()
		req := Request{Who: rf.researcher, Purpose: "MLTRAINING"}
		c, err := rf.door.ResearchCohort(ctx, req, diabetesQuery)
		if err != nil {
			t.Fatal(err)
		}
		if c.Candidates != 4 {
			t.Errorf("got %d candidates, want 4 (internal medicine, E11.9 or I10)", c.Candidates)
		}
		if diff := cmp.Diff([]string{"permits"}, rf.names(c.Members)); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"none", "research-only", "withdraws"}, rf.names(c.Excluded)); diff != "" {
			t.Errorf("excluded (-want +got):\n%s", diff)
		}
		if !slices.Contains(c.Flags, "deidentified-only") || !slices.Contains(c.Policies, "research-with-consent") {
			t.Errorf("flags %v, policies %v: want deidentified-only from research-with-consent", c.Flags, c.Policies)
		}
		last := rf.lastEvents(t, 1)[0]
		if last.Action != "audit.search" || !strings.Contains(last.Reason, "4 candidates, 1 allowed for MLTRAINING, 3 excluded") {
			t.Errorf("screening event %+v", last)
		}
		for _, e := range rf.events(t) {
			if e.Outcome == audit.Denied {
				t.Errorf("screening wrote a denial %+v; it counts the excluded in one event", e)
			}
		}

		hres, err := rf.door.ResearchCohort(ctx, Request{Who: rf.researcher, Purpose: "HRESCH"}, diabetesQuery)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"research-only"}, rf.names(hres.Members)); diff != "" {
			t.Errorf("HRESCH members (-want +got):\n%s", diff)
		}
		doc, err := rf.door.ResearchCohort(ctx, Request{Who: rf.doc, Purpose: "MLTRAINING"}, diabetesQuery)
		if err != nil || len(doc.Members) != 0 {
			t.Errorf("a physician's screening for MLTRAINING gave %v members, %v; want none", rf.names(doc.Members), err)
		}
	})
}

func (rf *researchFixture) lastEvents(t *testing.T, n int) []audit.Event {
	t.Helper()
	evs := rf.events(t)
	return evs[len(evs)-n:]
}

func TestResearchQueryChecks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rf := newResearchFixture(t, db)
		req := Request{Who: rf.researcher, Purpose: "MLTRAINING"}
		tests := []struct {
			name string
			req  Request
			q    ResearchQuery
			want error
		}{
			{"no reason", req, ResearchQuery{Classes: []string{ClassEncounter}}, ErrInvalid},
			{"break glass", Request{Who: rf.researcher, Purpose: "MLTRAINING", BreakGlass: "urgent"}, diabetesQuery, ErrInvalid},
			{"demographics as a record class", req, ResearchQuery{Classes: []string{ClassDemographics}, Reason: "x"}, ErrInvalid},
			{"window ends before it starts", req, ResearchQuery{Reason: "x", From: rf.start, To: rf.start.Add(-time.Hour)}, ErrInvalid},
			{"not signed in", Request{Purpose: "MLTRAINING"}, diabetesQuery, ErrUnauthenticated},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := rf.door.ResearchCohort(context.Background(), tt.req, tt.q); !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			})
		}
	})
}

func TestResearchCohortWindowAndCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rf := newResearchFixture(t, db)
		req := Request{Who: rf.researcher, Purpose: "MLTRAINING"}
		tests := []struct {
			name string
			q    ResearchQuery
			want int
		}{
			{"every code", ResearchQuery{Departments: []string{"internal_medicine"}, Classes: []string{ClassEncounter}, Reason: "x"}, 5},
			{"one code", ResearchQuery{Classes: []string{ClassEncounter}, Codes: []string{"J18.9"}, Reason: "x"}, 1},
			{"every department", ResearchQuery{Classes: []string{ClassEncounter}, Codes: []string{"E11.9"}, Reason: "x"}, 4},
			{"window of the first two", ResearchQuery{Classes: []string{ClassEncounter}, From: rf.start.Add(-150 * time.Minute), Reason: "x"}, 2},
			{"another class", ResearchQuery{Classes: []string{ClassNote}, Reason: "x"}, 0},
			{"no class: the departments", ResearchQuery{Departments: []string{"surgery"}, Reason: "x"}, 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, err := rf.door.ResearchCohort(context.Background(), req, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if c.Candidates != tt.want {
					t.Errorf("got %d candidates, want %d", c.Candidates, tt.want)
				}
			})
		}
	})
}

func TestResearchReadDecidesAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rf := newResearchFixture(t, db)
		ctx := context.Background()
		admin := Request{Who: rf.clerk, Purpose: "HOPERAT"}
		second, err := rf.door.RecordConsent(ctx, admin, rf.pts["other-code"].ID, Consent{Purpose: "MLTRAINING", Permit: true, From: rf.start.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		req := Request{Who: rf.researcher, Purpose: "MLTRAINING"}
		q := ResearchQuery{Departments: []string{"internal_medicine"}, Classes: []string{ClassEncounter}, Codes: []string{"E11.9", "J18.9"}, Reason: "dataset ds_test"}
		c, err := rf.door.ResearchCohort(ctx, req, q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"other-code", "permits"}, rf.names(c.Members)); diff != "" {
			t.Fatalf("members (-want +got):\n%s", diff)
		}
		// Both consents of other-code must go before it leaves the cohort.
		for _, id := range []string{rf.consents["other-code"].ID, second.ID} {
			if _, err := rf.door.WithdrawConsent(ctx, admin, id, "withdrawn after the screening"); err != nil {
				t.Fatal(err)
			}
		}
		before := len(rf.events(t))
		b, err := rf.door.ResearchRead(ctx, req, q, []string{rf.pts["permits"].ID, rf.pts["other-code"].ID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"other-code"}, rf.names(b.Excluded)); diff != "" {
			t.Errorf("excluded at the read (-want +got):\n%s", diff)
		}
		if len(b.Extracts) != 1 || b.Extracts[0].Patient.Name != "환자permits" || len(b.Extracts[0].Records) != 1 || b.Extracts[0].Records[0].Code != "E11.9" {
			t.Fatalf("extracts %+v, want the consenting patient's demographics and one encounter", b.Extracts)
		}
		var actions []string
		for _, e := range rf.events(t)[before:] {
			actions = append(actions, e.Action+" "+e.Patient)
			if e.Patient != "" && !slices.Contains(e.Flags, "deidentified-only") {
				t.Errorf("research read event %+v lacks the deidentified-only flag", e)
			}
		}
		p := rf.pts["permits"].Pseudonym
		want := []string{"demographics.read " + p, "encounter.read " + p, "audit.search "}
		if diff := cmp.Diff(want, actions); diff != "" {
			t.Errorf("audit events of the read (-want +got):\n%s", diff)
		}
		if _, err := rf.door.ResearchRead(ctx, req, q, make([]string, batchPatients+1)); !errors.Is(err, ErrInvalid) {
			t.Errorf("an oversized batch gave %v, want ErrInvalid", err)
		}
	})
}

func TestResearchStandings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rf := newResearchFixture(t, db)
		ctx := context.Background()
		if err := rf.door.DestroyPatient(ctx, Request{Who: rf.officer, Purpose: "HOPERAT"}, rf.pts["surgery"].ID, "REQUEST erasure test"); err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, n := range []string{"permits", "withdraws", "research-only", "surgery"} {
			ps = append(ps, rf.pts[n].Pseudonym)
		}
		ps = append(ps, "P-unknown")
		got, err := rf.door.ResearchStandings(ctx, "MLTRAINING", []string{ClassEncounter}, ps, rf.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		type verdict struct{ Erased, Withdrawn bool }
		var verdicts []verdict
		for _, s := range got {
			verdicts = append(verdicts, verdict{s.Erased, s.Withdrawn})
		}
		want := []verdict{{false, false}, {false, true}, {false, true}, {true, false}, {true, false}}
		if diff := cmp.Diff(want, verdicts); diff != "" {
			t.Errorf("standings (-want +got):\n%s", diff)
		}
		if got[1].Since.IsZero() || got[3].Since.IsZero() {
			t.Errorf("withdrawal and erasure carry no date: %+v", got)
		}
	})
}

func TestConsentStands(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	permit := ConsentTerm{Purpose: "MLTRAINING", Permit: true, From: now.Add(-day)}
	tests := []struct {
		name  string
		terms []ConsentTerm
		class string
		want  bool
	}{
		{"permit", []ConsentTerm{permit}, ClassNote, true},
		{"no consent", nil, ClassNote, false},
		{"other purpose", []ConsentTerm{{Purpose: "HRESCH", Permit: true, From: now.Add(-day)}}, ClassNote, false},
		{"not yet in force", []ConsentTerm{{Purpose: "MLTRAINING", Permit: true, From: now.Add(day)}}, ClassNote, false},
		{"ended", []ConsentTerm{{Purpose: "MLTRAINING", Permit: true, From: now.Add(-2 * day), Until: now.Add(-day)}}, ClassNote, false},
		{"other classes", []ConsentTerm{{Purpose: "MLTRAINING", Permit: true, Classes: []string{ClassObservation}, From: now.Add(-day)}}, ClassNote, false},
		{"covered class", []ConsentTerm{{Purpose: "MLTRAINING", Permit: true, Classes: []string{ClassNote}, From: now.Add(-day)}}, ClassNote, true},
		{"denial wins", []ConsentTerm{permit, {Purpose: "MLTRAINING", From: now.Add(-day)}}, ClassNote, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := consentStands(tt.terms, "MLTRAINING", tt.class, now); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLineageOpensForTheOfficerOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rf := newResearchFixture(t, db)
		ctx := context.Background()
		id := rf.pts["permits"].ID
		sealed, err := rf.door.SealLineage(ctx, id, "ds_one", []byte(`{"rows":[3]}`))
		if err != nil {
			t.Fatal(err)
		}
		officer := Request{Who: rf.officer, Purpose: "HOPERAT"}
		got, err := rf.door.OpenLineage(ctx, officer, id, "ds_one", sealed, "investigation 7")
		if err != nil || string(got) != `{"rows":[3]}` {
			t.Fatalf("officer opened %q, %v", got, err)
		}
		last := rf.lastEvents(t, 1)[0]
		if last.Action != "audit.read" || last.Actor != rf.officer.ID || !strings.Contains(last.Reason, "investigation 7") {
			t.Errorf("re-identification event %+v", last)
		}
		if _, err := rf.door.OpenLineage(ctx, officer, id, "ds_two", sealed, "moved"); !errors.Is(err, keys.ErrTampered) {
			t.Errorf("lineage of another dataset opened: %v", err)
		}
		if _, err := rf.door.OpenLineage(ctx, Request{Who: rf.researcher, Purpose: "MLTRAINING"}, id, "ds_one", sealed, "curious"); !errors.Is(err, ErrDenied) {
			t.Errorf("researcher opened the lineage: %v", err)
		}
		if err := rf.door.DestroyPatient(ctx, officer, id, "REQUEST erasure"); err != nil {
			t.Fatal(err)
		}
		if _, err := rf.door.OpenLineage(ctx, officer, id, "ds_one", sealed, "after erasure"); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("lineage of an erased patient gave %v, want ErrDestroyed", err)
		}
	})
}
