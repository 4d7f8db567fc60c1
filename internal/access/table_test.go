package access

import (
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// tableNow is the instant every decision-table request is judged at.
var tableNow = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

const (
	tableStaffID   = "staff-under-test"
	tablePatientID = "patient-1"
	homeDepartment = "cardiology"
	homeWard       = "5W"
)

// tableCase is one row of testdata/decisions.csv.
type tableCase struct {
	name, role, relationship, consent, purpose, labels, breakGlass, grant string
	action, class, mfa, context, expect, flags, decidedBy                 string
}

func readDecisionTable(t *testing.T) []tableCase {
	t.Helper()
	f, err := os.Open("testdata/decisions.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = 15
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read decision table: %v", err)
	}
	var cases []tableCase
	for _, row := range rows[1:] {
		cases = append(cases, tableCase{row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
			row[8], row[9], row[10], row[11], row[12], row[13], row[14]})
	}
	return cases
}

// tokens splits a +-joined column; "-" is the empty list.
func tokens(s string) []string {
	if s == "-" || s == "" {
		return nil
	}
	return strings.Split(s, "+")
}

// request builds the Request a row describes: a member of staff in
// cardiology (nurses on ward 5W) and a patient on ward 7E whose attending
// physician and care team are other people, changed by the row's tokens.
func (c tableCase) request(t *testing.T) Request {
	t.Helper()
	r := Request{
		Staff:     tableStaff(c),
		Patient:   Patient{ID: tablePatientID, Ward: "7E", Attending: "dr-someone-else", CareTeam: []string{"nurse-someone-else"}},
		Action:    Action(c.action),
		DataClass: DataClass(c.class),
		Purpose:   Purpose(c.purpose),
		Now:       tableNow,
	}
	if r.Staff.Role == Nurse {
		r.Staff.Wards = []string{homeWard}
	}
	for _, tok := range tokens(c.relationship) {
		applyRelationship(t, &r, tok)
	}
	for _, tok := range tokens(c.consent) {
		r.Patient.Consents = append(r.Patient.Consents, consentOf(t, tok))
	}
	for _, tok := range tokens(c.labels) {
		r.Patient.Labels = append(r.Patient.Labels, Label(tok))
	}
	r.BreakGlass = breakGlassOf(t, c.breakGlass)
	for _, tok := range tokens(c.grant) {
		r.Grants = append(r.Grants, grantOf(t, tok, SystemOf(r.DataClass)))
	}
	for _, tok := range tokens(c.context) {
		applyContext(t, &r, tok)
	}
	return r
}

func applyRelationship(t *testing.T, r *Request, tok string) {
	t.Helper()
	p := &r.Patient
	switch tok {
	case "attending":
		p.Attending = r.Staff.ID
	case "care_team":
		p.CareTeam = append(p.CareTeam, r.Staff.ID)
	case "department":
		p.ActiveEncounter, p.Department = true, homeDepartment
	case "department_inactive":
		p.ActiveEncounter, p.Department = false, homeDepartment
	case "encounter_elsewhere":
		p.ActiveEncounter, p.Department = true, "oncology"
	case "ward":
		p.Ward = homeWard
	default:
		t.Fatalf("unknown relationship %q", tok)
	}
}

func consentOf(t *testing.T, tok string) Consent {
	t.Helper()
	kind, rest, ok := strings.Cut(tok, ":")
	if !ok {
		t.Fatalf("consent %q: want kind:PURPOSE", tok)
	}
	purpose, class, _ := strings.Cut(rest, "@")
	c := Consent{Purpose: Purpose(purpose), Permit: true, From: tableNow.Add(-30 * 24 * time.Hour)}
	if class != "" {
		c.DataClasses = []DataClass{DataClass(class)}
	}
	switch kind {
	case "permit":
	case "deny":
		c.Permit = false
	case "expired":
		c.Until = tableNow.Add(-time.Hour)
	case "future":
		c.From = tableNow.Add(24 * time.Hour)
	default:
		t.Fatalf("unknown consent kind %q", kind)
	}
	return c
}

func breakGlassOf(t *testing.T, tok string) BreakGlass {
	t.Helper()
	b := BreakGlass{Reason: "cardiac arrest on arrival", Started: tableNow.Add(-10 * time.Minute), Expires: tableNow.Add(50 * time.Minute)}
	switch tok {
	case "-":
		return BreakGlass{}
	case "valid":
	case "no_reason":
		b.Reason = "   "
	case "expired":
		b.Started, b.Expires = tableNow.Add(-5*time.Hour), tableNow.Add(-time.Hour)
	case "too_long":
		b.Expires = tableNow.Add(6 * time.Hour)
	case "not_started":
		b.Started, b.Expires = tableNow.Add(10*time.Minute), tableNow.Add(time.Hour)
	default:
		t.Fatalf("unknown break-glass %q", tok)
	}
	return b
}

func grantOf(t *testing.T, tok, system string) Grant {
	t.Helper()
	g := Grant{
		ID: tok, Scopes: []string{ScopePatientData}, Systems: []string{system}, Patients: []string{tablePatientID},
		From: tableNow.Add(-time.Hour), Until: tableNow.Add(time.Hour),
	}
	switch tok {
	case "valid":
	case "expired":
		g.From, g.Until = tableNow.Add(-3*time.Hour), tableNow.Add(-time.Hour)
	case "future":
		g.From, g.Until = tableNow.Add(time.Hour), tableNow.Add(3*time.Hour)
	case "wrong_scope":
		g.Scopes = []string{ScopeSystem}
	case "other_patient":
		g.Patients = []string{"patient-2"}
	case "other_system":
		g.Systems = []string{SystemPACS}
		if system == SystemPACS {
			g.Systems = []string{SystemEMR}
		}
	case "all_systems":
		g.Systems, g.Patients = []string{"*"}, nil
	default:
		t.Fatalf("unknown grant %q", tok)
	}
	return g
}

func applyContext(t *testing.T, r *Request, tok string) {
	t.Helper()
	switch tok {
	case "legal_basis":
		r.LegalBasis = "Infectious Disease Control and Prevention Act, Art. 11"
	case "same_surname":
		r.SameSurname = true
	case "co_worker":
		r.CoWorker = true
	default:
		t.Fatalf("unknown context %q", tok)
	}
}

func loadShipped(t testing.TB) *Engine {
	t.Helper()
	e, err := LoadShipped()
	if err != nil {
		t.Fatalf("load shipped policies: %v", err)
	}
	return e
}

// TestDecisionTable runs every row of testdata/decisions.csv against the
// shipped policies.
func TestDecisionTable(t *testing.T) {
	e := loadShipped(t)
	cases := readDecisionTable(t)
	if len(cases) < 200 {
		t.Errorf("decision table has %d cases, want at least 200", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Errorf("case %s appears twice", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			d := e.Decide(c.request(t))
			c.check(t, d)
		})
	}
}

func (c tableCase) check(t *testing.T, d Decision) {
	t.Helper()
	explain := func() string { return "\n" + d.Explain() }
	if len(d.Errors) > 0 {
		t.Errorf("errors: %v", d.Errors)
	}
	if got, want := verdict(d.Allow), c.expect; got != want {
		t.Errorf("got %s, want %s%s", got, want, explain())
	}
	if diff := cmp.Diff(tokens(c.flags), d.Flags, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("flags (-want +got):\n%s%s", diff, explain())
	}
	switch {
	case c.decidedBy == "default" && len(d.Policies) > 0:
		t.Errorf("got deciding policies %v, want a deny by default%s", d.Policies, explain())
	case c.decidedBy != "default" && !slices.Contains(d.Policies, c.decidedBy):
		t.Errorf("got deciding policies %v, want %s among them%s", d.Policies, c.decidedBy, explain())
	}
}

func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// TestDecisionTableSpansDimensions makes sure the table keeps covering
// every role, purpose, action, data class, label, break-glass state and
// grant state, so that a trimmed table cannot pass unnoticed.
func TestDecisionTableSpansDimensions(t *testing.T) {
	cases := readDecisionTable(t)
	got := map[string]map[string]bool{}
	mark := func(dim string, values ...string) {
		if got[dim] == nil {
			got[dim] = map[string]bool{}
		}
		for _, v := range values {
			got[dim][v] = true
		}
	}
	for _, c := range cases {
		mark("role", strings.SplitN(c.role, ":", 2)[0])
		mark("purpose", c.purpose)
		mark("action", c.action)
		mark("class", c.class)
		mark("label", tokens(c.labels)...)
		mark("break_glass", c.breakGlass)
		mark("grant", tokens(c.grant)...)
		mark("relationship", tokens(c.relationship)...)
		mark("expect", c.expect)
	}
	want := map[string][]string{
		"role":         stringsOf(roles),
		"purpose":      enumVocabularies()[1].ids,
		"action":       stringsOf(actions),
		"class":        stringsOf(dataClasses),
		"label":        stringsOf(labels),
		"break_glass":  {"-", "valid", "no_reason", "expired", "too_long", "not_started"},
		"grant":        {"valid", "expired", "future", "wrong_scope", "other_patient", "other_system", "all_systems"},
		"relationship": {"attending", "care_team", "department", "department_inactive", "encounter_elsewhere", "ward"},
		"expect":       {"allow", "deny"},
	}
	for dim, values := range want {
		for _, v := range values {
			if !got[dim][v] {
				t.Errorf("decision table has no case with %s %s", dim, v)
			}
		}
	}
}

func ExampleDecision_Explain() {
	e, err := LoadShipped()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := e.Decide(Request{
		Staff:     Staff{ID: "nurse-kim", Role: Nurse, Wards: []string{"5W"}},
		Patient:   Patient{ID: "patient-1", Ward: "7E"},
		Action:    Read,
		DataClass: Note,
		Purpose:   Treatment,
		Now:       tableNow,
	})
	fmt.Print(d.Explain())
	// Output:
	// decision: DENY
	// decided by:
	//   nurse-outside-ward: a nurse may open records of patients on her own wards only
}

// tableStaff builds the asking staff member; a role "system:JOB" is one of
// medsec's own jobs, with the job as its position.
func tableStaff(c tableCase) Staff {
	role, job, isJob := strings.Cut(c.role, ":")
	s := Staff{ID: tableStaffID, Role: Role(role), Department: homeDepartment, Position: "staff", MFA: c.mfa == "yes"}
	if isJob {
		s.Position = job
	}
	return s
}
