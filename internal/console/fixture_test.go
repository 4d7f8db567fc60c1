package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/server"
	"github.com/medsec/medsec/internal/store/storetest"
)

// testClock is the hospital's clock in a test: sign-ins with one-time
// codes move it on by a TOTP step, so no code is used twice.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type account struct {
	identity.NewStaff
	secret string // TOTP secret of a privileged account
	who    identity.Principal
}

// fixture is a small hospital like the demo's: staff of every role that
// the console serves, registered patients with records, a break-glass
// access waiting for review, a consent, and the console mounted on the
// real medsec server (security headers and all) over TLS.
type fixture struct {
	h        *hospital.Hospital
	con      *Console
	srv      *httptest.Server
	clock    *testClock
	staff    map[string]*account
	patients []records.Patient
	names    []string
	mrns     []string
}

var fixtureStaff = []identity.NewStaff{
	{Username: "reception", DisplayName: "Registration desk", Role: identity.RoleAdministrative, Department: "administration"},
	{Username: "dr.kim", DisplayName: "Dr. Kim", Role: identity.RolePhysician, Department: "internal_medicine"},
	{Username: "nurse.lee", DisplayName: "Nurse Lee", Role: identity.RoleNurse, Department: "internal_medicine", Wards: []string{"5A"}},
	{Username: "nurse.park", DisplayName: "Nurse Park", Role: identity.RoleNurse, Department: "surgery", Wards: []string{"7B"}},
	{Username: "officer.han", DisplayName: "Security officer Han", Role: identity.RoleSecurityOfficer, Department: "security"},
	{Username: "it.jung", DisplayName: "IT administrator Jung", Role: identity.RoleITAdmin, Department: "it"},
}

var fixtureNames = []string{"김민수", "Kim Ji-hun", "박서준", "이수"}

func newFixture(t *testing.T) *fixture { return newFixtureOn(t, lifecycletest.SQLite) }

// newFixtureOn makes the fixture on a backend (PostgreSQL in a fresh
// schema when b names one).
func newFixtureOn(t *testing.T, b lifecycletest.Backend) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	pass := []byte("console test passphrase")
	dsn := ""
	if b.DSN != "" {
		dsn = storetest.WithSchema(b.DSN, storetest.NewSchema(t, b.DSN))
	}
	if _, err := hospital.Init(ctx, hospital.InitOptions{Dir: dir, Profile: "large", HospitalName: "Console Test Hospital", DSN: dsn,
		Passphrase: pass, AdminPassword: "correct-horse-battery-7", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}}); err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, dir, hospital.OpenOptions{Passphrase: pass, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	// The clock starts at noon today: each one-time code moves it a step,
	// and a start near midnight would move a day's tickets into the next.
	y, m, d := time.Now().Date()
	f := &fixture{h: h, clock: &testClock{t: time.Date(y, m, d, 12, 0, 0, 0, time.Local)}, staff: map[string]*account{}, names: fixtureNames}
	h.Staff.Now = f.clock.now
	h.SetClock(f.clock.now)
	f.hire(t)
	f.register(t)
	f.con, err = New(ctx, h, Options{Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t)
	return f
}

func (f *fixture) hire(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	// Cheap hashes while hiring; new passwords afterwards use the real cost.
	f.h.Staff.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	defer func() { f.h.Staff.HashParams = identity.DefaultHash }()
	for _, n := range fixtureStaff {
		n.Password = "staple battery horse " + strings.Repeat("x", len(n.Username)%5+3)
		if _, err := f.h.Staff.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		a := &account{NewStaff: n}
		who, err := f.h.Staff.Authenticate(ctx, n.Username, n.Password, "test")
		if err != nil {
			t.Fatal(err)
		}
		if f.h.Staff.RequiresMFA(n.Role) {
			enr, err := f.h.Staff.EnrolTOTP(ctx, who, who.ID)
			if err != nil {
				t.Fatal(err)
			}
			a.secret = enr.Secret
			if err := f.h.Staff.ConfirmTOTP(ctx, who, who.ID, f.code(t, a)); err != nil {
				t.Fatal(err)
			}
		}
		a.who = who
		f.staff[n.Username] = a
	}
}

// code is the account's one-time code now; the clock then moves a step.
func (f *fixture) code(t *testing.T, a *account) string {
	t.Helper()
	c, err := totp.GenerateCode(a.secret, f.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(30 * time.Second)
	return c
}

// principal signs a member of staff in (in process) with the second
// factor its role needs.
func (f *fixture) principal(t *testing.T, username string) identity.Principal {
	t.Helper()
	a := f.staff[username]
	req := identity.LoginRequest{Username: username, Password: a.Password, Source: "test"}
	if a.secret != "" {
		req.TOTP = f.code(t, a)
	}
	_, token, err := f.h.Staff.Login(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.h.Staff.Sessions.Authenticate(context.Background(), token, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) register(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	desk := records.Request{Who: f.staff["reception"].who, Purpose: "TREAT"}
	kim, lee := f.staff["dr.kim"].who, f.staff["nurse.lee"].who
	for i, name := range f.names {
		mrn := "MRN-20" + string(rune('0'+i))
		p, err := f.h.Door.RegisterPatient(ctx, desk, records.Patient{Name: name, RRN: "900101-123456" + string(rune('0'+i)), MRN: mrn,
			Phone: "010-5555-010" + string(rune('0'+i)), BirthDate: "1990-01-01", Sex: "female", Department: "internal_medicine", Ward: "5A",
			Attending: kim.ID, CareTeam: []string{kim.ID, lee.ID}, ActiveEncounter: true})
		if err != nil {
			t.Fatal(err)
		}
		f.patients, f.mrns = append(f.patients, p), append(f.mrns, mrn)
		rec := records.Record{Class: records.ClassObservation, Code: "8867-4", Effective: f.clock.now().Add(-time.Hour), Source: "staff:dr.kim",
			Payload: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"valueQuantity":{"value":72,"unit":"/min"}}`)}
		if _, err := f.h.Door.AddRecords(ctx, records.Request{Who: kim, Purpose: "TREAT"}, p.ID, []records.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.h.Door.RecordConsent(ctx, records.Request{Who: f.staff["reception"].who, Purpose: "HOPERAT"}, f.patients[0].ID,
		records.Consent{Purpose: "HRESCH", Permit: true, FormRef: "form 2026-17"}); err != nil {
		t.Fatal(err)
	}
	// Nurse Park (ward 7B) breaks the glass for a 5A patient: an alert for
	// the security officer's review.
	glass := records.Request{Who: f.staff["nurse.park"].who, Purpose: "ETREAT", BreakGlass: "patient collapsed in the corridor"}
	if _, err := f.h.Door.Patient(ctx, glass, f.patients[1].ID); err != nil {
		t.Fatal(err)
	}
}

// serve mounts the console on the real medsec server over TLS.
func (f *fixture) serve(t *testing.T) {
	t.Helper()
	s, err := server.New(f.h, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Mount("/", f.con)
	f.srv = httptest.NewUnstartedServer(s.Handler())
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
}

// client is a browser-like client of the fixture's server: cookies, no
// automatic redirects.
type client struct {
	f  *fixture
	hc *http.Client
	t  *testing.T
}

func (f *fixture) client(t *testing.T) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := *f.srv.Client() // a copy: each client has its own cookies
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{f: f, hc: &hc, t: t}
}

type response struct {
	status int
	body   string
	header http.Header
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.f.srv.URL+path, nil)
	req.Header.Set("Accept-Language", "en")
	return c.do(req)
}

// post submits a form the way a browser on the page would (same-origin).
func (c *client) post(path string, form url.Values) response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Accept-Language", "en")
	return c.do(req)
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from a page.
func (c *client) csrf(path string) string {
	c.t.Helper()
	m := csrfPattern.FindStringSubmatch(c.get(path).body)
	if m == nil {
		c.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// signIn signs a member of staff in through the console's form.
func (f *fixture) signIn(t *testing.T, username string) *client {
	t.Helper()
	c := f.client(t)
	a := f.staff[username]
	form := url.Values{"csrf": {c.csrf("/console/login")}, "username": {username}, "password": {a.Password}}
	if a.secret != "" {
		form.Set("code", f.code(t, a))
	}
	if r := c.post("/console/login", form); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		t.Fatalf("sign-in of %s: status %d, location %q\n%s", username, r.status, r.header.Get("Location"), r.body)
	}
	return c
}

// enrolScreen enrols a waiting-room screen for dept as the security
// officer does.
func (f *fixture) enrolScreen(t *testing.T, dept string) DisplayEnrolment {
	t.Helper()
	e, err := f.con.EnrolDisplay(context.Background(), f.principal(t, "officer.han"), dept, "test screen")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// openScreen opens an enrolled screen's address once, as the screen's
// browser does: the token goes into a cookie and the address is cleaned.
func (c *client) openScreen(e DisplayEnrolment) {
	c.t.Helper()
	r := c.get(e.Path)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/display/"+e.Department {
		c.t.Fatalf("opening the enrolled screen: %d %q, want a redirect to /display/%s", r.status, r.header.Get("Location"), e.Department)
	}
}

// screen is a client that plays the enrolled screen of dept.
func (f *fixture) screen(t *testing.T, dept string) *client {
	t.Helper()
	c := f.client(t)
	c.openScreen(f.enrolScreen(t, dept))
	return c
}
