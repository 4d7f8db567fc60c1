package fhirapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/server"
	"github.com/medsec/medsec/internal/store/storetest"
)

// testClock is the clock of the whole installation under test.
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

// env is one installation served over real HTTPS (the server's middleware
// and the API), with staff signed in through the login endpoint.
type env struct {
	t      testing.TB
	h      *hospital.Hospital
	srv    *httptest.Server
	clock  *testClock
	token  map[string]string // user name → bearer token
	staff  map[string]identity.Staff
	secret map[string]string // user name → TOTP secret
	// patient is on ward 5A, internal medicine, attending dr.kim; other is
	// on ward 7B, surgery, attending dr.choi.
	patient, other string
}

var testStaff = []identity.NewStaff{
	{Username: "reception", DisplayName: "Registration desk", Role: identity.RoleAdministrative, Department: "administration"},
	{Username: "dr.kim", DisplayName: "Dr. Kim", Role: identity.RolePhysician, Department: "internal_medicine"},
	{Username: "dr.choi", DisplayName: "Dr. Choi", Role: identity.RolePhysician, Department: "surgery"},
	{Username: "nurse.lee", DisplayName: "Nurse Lee", Role: identity.RoleNurse, Department: "internal_medicine", Wards: []string{"5A"}},
	{Username: "nurse.park", DisplayName: "Nurse Park", Role: identity.RoleNurse, Department: "surgery", Wards: []string{"7B"}},
	{Username: "researcher.yoon", DisplayName: "Researcher Yoon", Role: identity.RoleResearcher, Department: "research"},
	{Username: "officer.han", DisplayName: "Security officer Han", Role: identity.RoleSecurityOfficer, Department: "security"},
}

const testPassword = "correct horse battery staple 2026"

// newEnv makes an installation on SQLite, or on a fresh PostgreSQL schema
// when dsn is set.
func newEnv(t testing.TB, dsn string) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pass := []byte("test passphrase")
	_, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: "small", HospitalName: "test hospital", Passphrase: pass,
		AdminPassword: "purple pony wristwatch 1986 launch", DSN: dsn, KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	e := &env{t: t, h: h, clock: &testClock{t: time.Now()}, token: map[string]string{}, staff: map[string]identity.Staff{}, secret: map[string]string{}}
	h.SetClock(e.clock.Now)
	h.Staff.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	srv, err := server.New(h, server.Options{TLS: nil})
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount("/fhir", New(h, Options{Documents: h.Documents}))
	e.srv = httptest.NewUnstartedServer(srv.Handler())
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.hire()
	e.registerPatients()
	return e
}

func newEnvs(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t, "")) })
	if dsn := storetest.PostgresDSN(); dsn != "" {
		t.Run("postgres", func(t *testing.T) {
			fn(t, newEnv(t, storetest.WithSchema(dsn, storetest.NewSchema(t, dsn))))
		})
	}
}

// hire creates the staff and signs each in through POST /fhir/auth/login;
// the security officer and Dr. Kim enrol a TOTP second factor first.
func (e *env) hire() {
	ctx := context.Background()
	for _, n := range testStaff {
		n.Password = testPassword
		st, err := e.h.Staff.Create(ctx, n)
		if err != nil {
			e.t.Fatal(err)
		}
		e.staff[n.Username] = st
		if n.Role == identity.RoleSecurityOfficer || n.Username == "dr.kim" {
			e.enrolTOTP(n.Username)
		}
	}
	e.clock.Advance(30 * time.Second) // the confirming code is spent
	for _, n := range testStaff {
		e.token[n.Username] = e.login(n.Username, testPassword, e.code(n.Username))
	}
}

func (e *env) enrolTOTP(user string) {
	ctx := context.Background()
	who, err := e.h.Staff.Authenticate(ctx, user, testPassword, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	enr, err := e.h.Staff.EnrolTOTP(ctx, who, who.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.secret[user] = enr.Secret
	if err := e.h.Staff.ConfirmTOTP(ctx, who, who.ID, e.code(user)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) code(user string) string {
	if e.secret[user] == "" {
		return ""
	}
	c, err := totp.GenerateCode(e.secret[user], e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) login(user, password, code string) string {
	body, _ := json.Marshal(loginRequest{Username: user, Password: password, TOTP: code})
	res, b := e.do("POST", "/fhir/auth/login", "", "", string(body))
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", user, res.StatusCode, b)
	}
	var ans loginAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		e.t.Fatal(err)
	}
	return ans.AccessToken
}

// do sends one request; extra holds header name/value pairs.
func (e *env) do(method, path, token, purpose, body string, extra ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if purpose != "" {
		req.Header.Set(HeaderPurpose, purpose)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// as sends a request as a user for a purpose.
func (e *env) as(user, purpose, method, path, body string, extra ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(method, path, e.token[user], purpose, body, extra...)
}

func (e *env) registerPatients() {
	e.patient = e.register("김민수", "MRN-000001", "900101-1234568", "internal_medicine", "5A", "dr.kim")
	e.other = e.register("Jane Roe", "MRN-000002", "", "surgery", "7B", "dr.choi")
}

func (e *env) register(name, mrn, rrn, dept, ward, attending string) string {
	e.t.Helper()
	ids := `{"system":"` + SystemMRN + `","value":"` + mrn + `"}`
	if rrn != "" {
		ids += `,{"system":"` + SystemRRN + `","value":"` + rrn + `"}`
	}
	body := `{"resourceType":"Patient","name":[{"text":"` + name + `"}],"identifier":[` + ids + `],"gender":"male","birthDate":"1990-01-01",
		"telecom":[{"system":"phone","value":"010-1234-5678"}],
		"extension":[{"url":"` + ExtDepartment + `","valueString":"` + dept + `"},{"url":"` + ExtWard + `","valueString":"` + ward + `"}],
		"generalPractitioner":[{"reference":"Practitioner/` + fhirID(e.staff[attending].ID) + `"}]}`
	res, b := e.as("reception", "TREAT", "POST", "/fhir/Patient", body)
	if res.StatusCode != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", mrn, res.StatusCode, b)
	}
	var p struct{ ID string }
	json.Unmarshal(b, &p)
	return p.ID
}

// observation is a heart-rate Observation of the patient.
func observation(patient string, value float64) string {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "Observation", "status": "final",
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}}},
		"subject":           map[string]any{"reference": "Patient/" + patient},
		"effectiveDateTime": "2026-03-01T09:30:00Z",
		"valueQuantity":     map[string]any{"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
	})
	return string(b)
}

// events returns the audit log.
func (e *env) events() []audit.Event {
	var out []audit.Event
	err := audit.Scan(context.Background(), e.h.DB, e.h.Audit.Chain(), 0, 0, func(ev audit.Event) error { out = append(out, ev); return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// staffReq is a direct door request as a signed-in member of staff (to
// count what is stored without going through the API under test).
func (e *env) staffReq(user, purpose string) records.Request {
	p, err := e.h.Staff.Sessions.Authenticate(context.Background(), e.token[user], "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return records.Request{Who: p, Purpose: purpose}
}

func (e *env) observationCount(patientFHIR string) int {
	id, _ := internalID(patientFHIR, "Patient")
	recs, err := e.h.Door.Records(context.Background(), e.staffReq("dr.kim", "TREAT"), id, records.Filter{Class: records.ClassObservation})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(recs)
}

// outcome decodes an OperationOutcome and returns its diagnostics.
func outcome(t testing.TB, b []byte) string {
	t.Helper()
	var oo operationOutcome
	if err := json.Unmarshal(b, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 || oo.Issue[0].Diagnostics == "" {
		t.Fatalf("body is not an OperationOutcome with a reason: %s", b)
	}
	return oo.Issue[0].Diagnostics
}
