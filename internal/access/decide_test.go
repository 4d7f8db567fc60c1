package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/google/go-cmp/cmp"
)

// physicianRequest is the attending physician reading a note for treatment.
func physicianRequest() Request {
	return Request{
		Staff:     Staff{ID: "dr-lee", Role: Physician, Department: "cardiology", MFA: true},
		Patient:   Patient{ID: "patient-1", Department: "cardiology", Ward: "5W", Attending: "dr-lee", ActiveEncounter: true},
		Action:    Read,
		DataClass: Note,
		Purpose:   Treatment,
		Now:       tableNow,
	}
}

func TestDecideRefusesMalformedRequests(t *testing.T) {
	e := loadShipped(t)
	tests := []struct {
		name string
		edit func(r *Request)
		want string
	}{
		{"no staff ID", func(r *Request) { r.Staff.ID = "" }, "staff ID is empty"},
		{"no patient ID", func(r *Request) { r.Patient.ID = "" }, "patient ID is empty"},
		{"no time", func(r *Request) { r.Now = time.Time{} }, "request time is not set"},
		{"unknown role", func(r *Request) { r.Staff.Role = "surgeon" }, `unknown role "surgeon"`},
		{"unknown action", func(r *Request) { r.Action = "delete" }, `unknown action "delete"`},
		{"unknown data class", func(r *Request) { r.DataClass = "genome" }, `unknown data class "genome"`},
		{"unknown purpose", func(r *Request) { r.Purpose = "TREATMENT" }, `unknown purpose of use "TREATMENT"`},
		{"empty purpose", func(r *Request) { r.Purpose = "" }, `unknown purpose of use ""`},
		{"unknown label", func(r *Request) { r.Patient.Labels = []Label{"celebrity"} }, `unknown sensitivity label "celebrity"`},
		{"unknown consent purpose", func(r *Request) {
			r.Patient.Consents = []Consent{{Purpose: "MARKETING", Permit: true}}
		}, `consent names unknown purpose of use "MARKETING"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := physicianRequest()
			tt.edit(&r)
			d := e.Decide(r)
			if d.Allow {
				t.Errorf("got allow, want deny")
			}
			if !strings.Contains(strings.Join(d.Errors, "; "), tt.want) {
				t.Errorf("got errors %q, want one saying %q", d.Errors, tt.want)
			}
		})
	}
}

func TestDecideFailsClosedOnEvaluationError(t *testing.T) {
	// Times at the very end of Cedar's datetime range make
	// `started.offset(duration("4h"))` overflow, so every policy testing
	// break-glass fails to evaluate, among them the `unless` of the forbid
	// on sensitive records. Cedar skips a policy it cannot evaluate; without
	// failing closed, the department permit alone would open an HIV record.
	e := loadShipped(t)
	r := physicianRequest()
	r.Patient.Attending = "dr-someone-else"
	r.Patient.Labels = []Label{HIV}
	r.Purpose = EmergencyTreatment
	r.Now = time.UnixMilli(math.MaxInt64 - 2000)
	r.BreakGlass = BreakGlass{Reason: "collapse", Started: time.UnixMilli(math.MaxInt64 - 3000), Expires: time.UnixMilli(math.MaxInt64 - 1000)}
	d := e.Decide(r)
	if d.Allow {
		t.Errorf("got allow, want deny\n%s", d.Explain())
	}
	if len(d.Errors) == 0 {
		t.Errorf("got no errors, want the evaluation errors recorded")
	}
	if len(d.Policies) != 0 || len(d.Reasons) == 0 || d.Reasons[0] != failClosedReason {
		t.Errorf("got policies %v and reasons %q, want none and %q first", d.Policies, d.Reasons, failClosedReason)
	}
}

func TestBreakGlassTimeLimits(t *testing.T) {
	e := loadShipped(t)
	tests := []struct {
		name             string
		started, expires time.Duration // from now
		want             bool
	}{
		{"just broken", 0, time.Hour, true},
		{"last millisecond", -time.Hour + time.Millisecond, time.Millisecond, true},
		{"at expiry", -time.Hour, 0, false},
		{"window of exactly four hours", -time.Hour, 3 * time.Hour, true},
		{"window a millisecond over four hours", -time.Hour, 3*time.Hour + time.Millisecond, false},
		{"expiry before start", time.Minute, -time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := physicianRequest()
			r.Patient.Attending, r.Patient.Department = "dr-someone-else", "oncology"
			r.Purpose = EmergencyTreatment
			r.BreakGlass = BreakGlass{Reason: "collapse", Started: r.Now.Add(tt.started), Expires: r.Now.Add(tt.expires)}
			d := e.Decide(r)
			if d.Allow != tt.want {
				t.Errorf("got allow=%v, want %v\n%s", d.Allow, tt.want, d.Explain())
			}
			if !d.HasFlag("break-glass") || !d.HasFlag("review") {
				t.Errorf("got flags %v, want break-glass and review", d.Flags)
			}
		})
	}
}

func TestGrantTimeLimits(t *testing.T) {
	e := loadShipped(t)
	tests := []struct {
		name        string
		from, until time.Duration // from now
		want        bool
	}{
		{"starts now", 0, time.Hour, true},
		{"ends now", -time.Hour, 0, false},
		{"ends in a millisecond", -time.Hour, time.Millisecond, true},
		{"starts in a millisecond", time.Millisecond, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{
				Staff:   Staff{ID: "vendor-1", Role: ExternalMaintainer, MFA: true},
				Patient: Patient{ID: "patient-1", Consents: []Consent{{Purpose: Operations, Permit: true}}},
				Action:  Read, DataClass: Order, Purpose: Operations, Now: tableNow,
				Grants: []Grant{{ID: "g1", Scopes: []string{ScopePatientData}, Systems: []string{SystemOCS}, From: tableNow.Add(tt.from), Until: tableNow.Add(tt.until)}},
			}
			if d := e.Decide(r); d.Allow != tt.want {
				t.Errorf("got allow=%v, want %v\n%s", d.Allow, tt.want, d.Explain())
			}
		})
	}
}

func TestConsentPeriod(t *testing.T) {
	tests := []struct {
		name        string
		from, until time.Duration // from now; until 0 means open-ended
		want        bool
	}{
		{"in force", -time.Hour, 0, true},
		{"starts now", 0, 0, true},
		{"starts later", time.Millisecond, 0, false},
		{"ends later", -time.Hour, time.Millisecond, true},
		{"ended now (withdrawn)", -time.Hour, -0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Consent{Purpose: Research, Permit: true, From: tableNow.Add(tt.from)}
			if tt.until != 0 {
				c.Until = tableNow.Add(tt.until)
			}
			if got := c.inForce(tableNow); got != tt.want {
				t.Errorf("got inForce=%v, want %v", got, tt.want)
			}
		})
	}
	withdrawn := Consent{Purpose: Research, Permit: true, From: tableNow.Add(-time.Hour), Until: tableNow}
	if withdrawn.inForce(tableNow) {
		t.Errorf("a consent withdrawn at this instant is still in force")
	}
}

func TestCoveringGrantPrefersUsableGrant(t *testing.T) {
	valid := Grant{ID: "valid", Scopes: []string{ScopePatientData}, Systems: []string{SystemEMR}, From: tableNow.Add(-time.Hour), Until: tableNow.Add(time.Hour)}
	systemOnly := Grant{ID: "system-only", Scopes: []string{ScopeSystem}, Systems: []string{SystemEMR}, From: tableNow.Add(-time.Hour), Until: tableNow.Add(2 * time.Hour)}
	expired := Grant{ID: "expired", Scopes: []string{ScopePatientData}, Systems: []string{SystemEMR}, From: tableNow.Add(-3 * time.Hour), Until: tableNow.Add(-time.Hour)}
	otherPatient := Grant{ID: "other-patient", Scopes: []string{ScopePatientData}, Systems: []string{"*"}, Patients: []string{"patient-2"}, From: tableNow.Add(-time.Hour), Until: tableNow.Add(time.Hour)}
	noSystems := Grant{ID: "no-systems", Scopes: []string{ScopePatientData}, From: tableNow.Add(-time.Hour), Until: tableNow.Add(time.Hour)}
	tests := []struct {
		name   string
		grants []Grant
		want   string // ID, "" for none
	}{
		{"none", nil, ""},
		{"valid after others", []Grant{expired, systemOnly, valid}, "valid"},
		{"valid before others", []Grant{valid, expired, systemOnly}, "valid"},
		{"valid beats system-only", []Grant{systemOnly, valid}, "valid"},
		{"system-only beats expired", []Grant{expired, systemOnly}, "system-only"},
		{"other patient does not cover", []Grant{otherPatient}, ""},
		{"no systems covers nothing", []Grant{noSystems}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, ok := coveringGrant(tt.grants, SystemEMR, "patient-1", tableNow)
			if got := map[bool]string{true: g.ID, false: ""}[ok]; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecisionIsAuditable(t *testing.T) {
	e := loadShipped(t)
	r := physicianRequest()
	r.Patient.Labels = []Label{VIP}
	d := e.Decide(r)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Decision
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, back); diff != "" {
		t.Errorf("decision does not survive JSON (-before +after):\n%s", diff)
	}
	want := `{"allow":true,"flags":["vip"],` +
		`"policies":["physician-attending","physician-department-encounter"],` +
		`"reasons":["the physician is the patient's attending physician and the purpose is treatment",` +
		`"the patient has an active encounter in the physician's department and the purpose is treatment",` +
		`"flagged vip: the patient is labelled VIP"]}`
	if string(b) != want {
		t.Errorf("got JSON\n%s\nwant\n%s", b, want)
	}
}

func TestDecisionErr(t *testing.T) {
	e := loadShipped(t)
	if err := e.Decide(physicianRequest()).Err(); err != nil {
		t.Errorf("allowed request: got %v, want nil", err)
	}
	r := physicianRequest()
	r.Staff.Role = Pharmacist
	err := e.Decide(r).Err()
	if !errors.Is(err, ErrDenied) {
		t.Errorf("denied request: got %v, want ErrDenied", err)
	}
	if err == nil || !strings.Contains(err.Error(), "denies by default") {
		t.Errorf("got %v, want the reason in the error", err)
	}
}

func TestExplain(t *testing.T) {
	e := loadShipped(t)
	r := physicianRequest()
	r.Patient.Attending = "dr-someone-else"
	r.Patient.Department = "oncology"
	r.Patient.Labels = []Label{VIP}
	r.Purpose = EmergencyTreatment
	r.BreakGlass = BreakGlass{Reason: "unconscious on arrival", Started: tableNow.Add(-time.Minute), Expires: tableNow.Add(time.Hour)}
	got := e.Decide(r).Explain()
	want := `decision: ALLOW
flags: break-glass, review, vip
decided by:
  break-glass-clinician: a clinician broke the glass for an emergency with a typed reason, within its time limit
because:
  flagged break-glass, review: break-glass was claimed; the security officer reviews every emergency access
  flagged vip: the patient is labelled VIP
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("explain (-want +got):\n%s", diff)
	}
}

// TestIssueDemoOutcomes pins the four outcomes `medsec demo` reports
// (issue 4, "Done when").
func TestIssueDemoOutcomes(t *testing.T) {
	e := loadShipped(t)
	nurse := Request{
		Staff:   Staff{ID: "nurse-park", Role: Nurse, Department: "cardiology", Wards: []string{"5W"}},
		Patient: Patient{ID: "patient-7", Department: "oncology", Ward: "7E", Attending: "dr-choi", ActiveEncounter: true},
		Action:  Read, DataClass: Observation, Purpose: Treatment, Now: tableNow,
	}
	physician := physicianRequest()
	breakGlass := nurse
	breakGlass.Purpose = EmergencyTreatment
	breakGlass.BreakGlass = BreakGlass{Reason: "rapid response call", Started: tableNow, Expires: tableNow.Add(time.Hour)}
	researcher := Request{
		Staff:   Staff{ID: "res-han", Role: Researcher, MFA: true},
		Patient: Patient{ID: "patient-9", Consents: []Consent{{Purpose: Research, Permit: false}}},
		Action:  Read, DataClass: Observation, Purpose: Research, Now: tableNow,
	}
	outcome := func(d Decision) string {
		switch {
		case d.Allow && d.HasFlag("review"):
			return "allow-flagged"
		case d.Allow:
			return "allow"
		}
		return "deny"
	}
	got := map[string]string{
		"nurse_other_ward":      outcome(e.Decide(nurse)),
		"physician_own_patient": outcome(e.Decide(physician)),
		"break_glass":           outcome(e.Decide(breakGlass)),
		"researcher_no_consent": outcome(e.Decide(researcher)),
	}
	want := map[string]string{"nurse_other_ward": "deny", "physician_own_patient": "allow", "break_glass": "allow-flagged", "researcher_no_consent": "deny"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("demo outcomes (-want +got):\n%s", diff)
	}
}

func TestPurposes(t *testing.T) {
	got := map[Purpose]string{}
	for _, p := range Purposes() {
		if p.System != PurposeSystem {
			t.Errorf("%s: got system %s, want %s", p.Code, p.System, PurposeSystem)
		}
		if p.NeedsConsent == (p.Code == Treatment || p.Code == EmergencyTreatment) {
			t.Errorf("%s: got NeedsConsent=%v", p.Code, p.NeedsConsent)
		}
		got[p.Code] = p.Display
	}
	want := map[Purpose]string{
		"TREAT": "treatment", "ETREAT": "emergency treatment", "HPAYMT": "healthcare payment",
		"HOPERAT": "healthcare operations", "HRESCH": "healthcare research", "PUBHLTH": "public health",
		"MLTRAINING": "machine learning training",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("purposes (-want +got):\n%s", diff)
	}
	if p, err := ParsePurpose("HRESCH"); err != nil || p != Research {
		t.Errorf("ParsePurpose(HRESCH): got %q, %v", p, err)
	}
	if _, err := ParsePurpose("hresch"); !errors.Is(err, ErrUnknownPurpose) {
		t.Errorf("ParsePurpose(hresch): got %v, want ErrUnknownPurpose", err)
	}
}

func TestDecideConcurrently(t *testing.T) {
	e := loadShipped(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				r := physicianRequest()
				if (i+j)%2 == 1 {
					r.Staff.Role = Pharmacist
				}
				if got, want := e.Decide(r).Allow, (i+j)%2 == 0; got != want {
					t.Errorf("got allow=%v, want %v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestEmergencyConditionIsTheSameEverywhere checks that every forbid an
// emergency overrides repeats, in its unless clause, exactly the condition
// of the break-glass permit (in any order), so that an edit to one copy
// cannot leave the others behind.
func TestEmergencyConditionIsTheSameEverywhere(t *testing.T) {
	e := loadShipped(t)
	want := conjuncts(t, e, "break-glass-clinician", xast.ConditionWhen)
	for _, id := range []string{"consent-denied", "nurse-outside-ward", "sensitive-needs-care-relationship"} {
		got := conjuncts(t, e, id, xast.ConditionUnless)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: unless differs from break-glass-clinician (-permit +forbid):\n%s", id, diff)
		}
	}
}

// conjuncts returns the &&-joined parts of a policy's when or unless
// clause, rendered and sorted.
func conjuncts(t *testing.T, e *Engine, id string, which xast.Condition) []string {
	t.Helper()
	for _, np := range e.decisive.policies {
		if string(np.id) != id {
			continue
		}
		var out []string
		for _, c := range (*xast.Policy)(np.policy.AST()).Conditions {
			if c.Condition == which {
				out = append(out, splitAnd(c.Body)...)
			}
		}
		slices.Sort(out)
		return out
	}
	t.Fatalf("no decisive policy %s", id)
	return nil
}

func splitAnd(n xast.IsNode) []string {
	if and, ok := n.(xast.NodeTypeAnd); ok {
		return append(splitAnd(and.Left), splitAnd(and.Right)...)
	}
	return []string{fmt.Sprintf("%#v", n)}
}
