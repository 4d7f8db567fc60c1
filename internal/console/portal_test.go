package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/records"
)

var codePattern = regexp.MustCompile(`[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}`)

// issueCode has the registration desk issue an activation code for the
// fixture's first patient through the console.
func issueCode(t *testing.T, f *fixture) string {
	t.Helper()
	desk := f.signIn(t, "reception")
	r := desk.post("/console/desk/portal", url.Values{"csrf": {desk.csrf("/console/desk")}, "mrn": {f.mrns[0]}})
	code := codePattern.FindString(r.body)
	if r.status != http.StatusOK || code == "" {
		t.Fatalf("issue activation: %d, no code on the page", r.status)
	}
	return code
}

const patientPassword = "river lantern orchard 92"

func activate(t *testing.T, f *fixture, code, username string) response {
	t.Helper()
	c := f.client(t)
	return c.post("/portal/activate", url.Values{"csrf": {c.csrf("/portal/activate")}, "code": {strings.ToLower(code)},
		"username": {username}, "password": {patientPassword}, "password2": {patientPassword}})
}

func patientSignIn(t *testing.T, f *fixture, username, password string) (*client, response) {
	t.Helper()
	c := f.client(t)
	r := c.post("/portal/login", url.Values{"csrf": {c.csrf("/portal/login")}, "username": {username}, "password": {password}})
	return c, r
}

func TestPortal(t *testing.T) {
	f := newFixture(t)
	code := issueCode(t, f)
	if r := activate(t, f, code, "minsu"); r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d\n%s", r.status, r.body)
	}
	if r := activate(t, f, code, "minsu2"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "not valid") {
		t.Errorf("second use of the code: %d, want 400", r.status)
	}
	if _, r := patientSignIn(t, f, "minsu", "wrong password here"); r.status != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", r.status)
	}
	p, r := patientSignIn(t, f, "minsu", patientPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("patient sign-in: %d\n%s", r.status, r.body)
	}
	home := p.get("/portal/")
	if home.status != http.StatusOK || !strings.Contains(home.body, f.patients[0].Pseudonym) || !strings.Contains(home.body, "Not available yet") {
		t.Errorf("portal home: %d; want the pseudonym and the records section marked not available", home.status)
	}
	access := p.get("/portal/access")
	for _, want := range []string{"Dr. Kim", "Registration desk", "treatment"} {
		if !strings.Contains(access.body, want) {
			t.Errorf("access history lacks %q", want)
		}
	}
	if strings.Contains(access.body, f.patients[1].Pseudonym) {
		t.Errorf("access history shows another patient's events")
	}

	consents := p.get("/portal/consents")
	m := regexp.MustCompile(`action="/portal/consents/([^/]+)/withdraw"`).FindStringSubmatch(consents.body)
	if m == nil {
		t.Fatalf("no withdrawable consent on the page")
	}
	r = p.post("/portal/consents/"+m[1]+"/withdraw", url.Values{"csrf": {p.csrf("/portal/consents")}, "reason": {"changed my mind"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("withdraw: %d\n%s", r.status, r.body)
	}
	cs, err := f.h.Door.Consents(context.Background(), records.Request{Who: f.principal(t, "reception"), Purpose: "HOPERAT"}, f.patients[0].ID)
	if err != nil || len(cs) != 1 || cs[0].WithdrawnAt.IsZero() {
		t.Errorf("door's consents after withdrawing: %+v, %v", cs, err)
	}
	if r := p.post("/portal/consents/"+m[1]+"/withdraw", url.Values{"csrf": {"x"}}); r.status != http.StatusForbidden {
		t.Errorf("withdraw without the form token: %d, want 403", r.status)
	}

	for path, want := range map[string]string{"/portal/devices": "No device is registered to you.", "/portal/requests": "Not available yet"} {
		if r := p.get(path); r.status != http.StatusOK || !strings.Contains(r.body, want) {
			t.Errorf("%s: %d, want 200 with %q", path, r.status, want)
		}
	}
	if r := p.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("a patient's session opened the staff console: %d", r.status)
	}
	if r := f.signIn(t, "officer.han").get("/portal/"); r.status != http.StatusSeeOther {
		t.Errorf("a staff session opened the patient portal: %d", r.status)
	}
	other := f.client(t)
	if r := other.get("/portal/"); r.status != http.StatusSeeOther {
		t.Errorf("portal without a session: %d, want a redirect to sign in", r.status)
	}
	f.clock.add(16 * time.Minute)
	if r := p.get("/portal/"); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "ended") {
		t.Errorf("after 16 idle minutes: %d %q, want the session ended", r.status, r.header.Get("Location"))
	}
}

func TestPortalLockout(t *testing.T) {
	f := newFixture(t)
	if r := activate(t, f, issueCode(t, f), "minsu"); r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d", r.status)
	}
	ctx := context.Background()
	for i := range patientMaxFailure {
		if _, err := f.con.PatientLogin(ctx, "minsu", "wrong", "test"); err == nil {
			t.Fatalf("attempt %d succeeded", i)
		}
	}
	if _, err := f.con.PatientLogin(ctx, "minsu", patientPassword, "test"); err != ErrPatientLocked {
		t.Errorf("right password while locked: %v, want ErrPatientLocked", err)
	}
	f.clock.add(patientLockFor + time.Second)
	if _, err := f.con.PatientLogin(ctx, "minsu", patientPassword, "test"); err != nil {
		t.Errorf("after the lock: %v", err)
	}
	if !auditHas(t, f, "portal.login", "locked") {
		t.Errorf("the lockout is not in the audit log")
	}
}

func TestPortalEndsWithTheRecord(t *testing.T) {
	f := newFixture(t)
	if r := activate(t, f, issueCode(t, f), "minsu"); r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d", r.status)
	}
	officer := f.principal(t, "officer.han")
	if err := f.h.Door.DestroyPatient(context.Background(), records.Request{Who: officer, Purpose: "HOPERAT"}, f.patients[0].ID, "REQUEST test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.con.PatientLogin(context.Background(), "minsu", patientPassword, "test"); err != ErrPortalEnded {
		t.Errorf("sign-in after the record was destroyed: %v, want ErrPortalEnded", err)
	}
}

func TestPortalTokenSealed(t *testing.T) {
	f := newFixture(t)
	if r := activate(t, f, issueCode(t, f), "minsu"); r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d", r.status)
	}
	var token []byte
	if err := f.h.DB.QueryRow(context.Background(), `SELECT token FROM console_patient_accounts WHERE pseudonym = ?`, f.patients[0].Pseudonym).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(token), "mpp1_") {
		t.Errorf("the portal token is stored in plaintext")
	}
	b, _ := json.Marshal(token)
	if len(b) < 40 {
		t.Errorf("sealed token too short: %d bytes", len(token))
	}
}

// TestPortalUserNameNotKept: the user name a patient chooses (often a name
// and a birth year) is in neither the database nor the audit log; sign-in
// by it still works.
func TestPortalUserNameNotKept(t *testing.T) {
	f := newFixture(t)
	if r := activate(t, f, issueCode(t, f), "kimminsu85"); r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d\n%s", r.status, r.body)
	}
	if _, r := patientSignIn(t, f, "kimminsu85", patientPassword); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in by user name: %d", r.status)
	}
	if _, r := patientSignIn(t, f, "kimminsu86", patientPassword); r.status != http.StatusUnauthorized {
		t.Errorf("sign-in by another user name: %d, want 401", r.status)
	}
	if stored := rawRows(t, f, "console_patient_accounts"); strings.Contains(stored, "kimminsu") {
		t.Errorf("the portal account table holds the user name")
	}
	var id string
	if err := f.h.DB.QueryRow(context.Background(), `SELECT id FROM console_patient_accounts`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	err := audit.Scan(context.Background(), f.h.DB, f.h.Audit.Chain(), 0, 0, func(e audit.Event) error {
		if strings.Contains(fmt.Sprintf("%+v", e), "kimminsu") {
			t.Errorf("audit event %d (%s) names the user name", e.Index, e.Action)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !auditHas(t, f, "portal.activate", "portal account "+id+" activated") {
		t.Errorf("the activation is not audited by account id")
	}
	as, err := f.h.Alerts.List(context.Background(), alerts.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if strings.Contains(a.Summary+a.Detail, "kimminsu") {
			t.Errorf("alert %s names the user name", a.ID)
		}
	}
}

// TestPortalUserNamesUpgraded: accounts made before user names became
// digests are converted when the console opens, and still sign in.
func TestPortalUserNamesUpgraded(t *testing.T) {
	f := newFixture(t)
	if r := activate(t, f, issueCode(t, f), "minsu"); r.status != http.StatusSeeOther {
		t.Fatalf("activate: %d", r.status)
	}
	ctx := context.Background()
	// As schema version 1 left it: the user name in plaintext, no digest.
	if _, err := f.h.DB.Exec(ctx, `UPDATE console_patient_accounts SET username = ?, username_mac = NULL`, "kimminsu85"); err != nil {
		t.Fatal(err)
	}
	con, err := New(ctx, f.h, Options{Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if stored := rawRows(t, f, "console_patient_accounts"); strings.Contains(stored, "kimminsu85") {
		t.Errorf("the old user name is still stored after the upgrade")
	}
	if _, err := con.PatientLogin(ctx, "kimminsu85", patientPassword, "test"); err != nil {
		t.Errorf("sign-in with the old user name after the upgrade: %v", err)
	}
}
