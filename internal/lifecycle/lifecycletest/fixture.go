// Package lifecycletest assembles a real installation — hospital.Init and
// hospital.Open on SQLite or PostgreSQL, with the shipped Cedar policy, the
// one door, the audit log and the alert inbox — plus the life-cycle engine
// and the provision service, for the tests and benchmarks of
// internal/lifecycle and internal/provision. Staff who export or trace
// sign in with a second factor, as the policy demands; a clock the test
// moves drives the door, the policy, the staff directory and both services.
package lifecycletest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// Clock is a clock the test sets and moves.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Backend names where an installation's database lives.
type Backend struct {
	Name string
	DSN  string // PostgreSQL base DSN; "" for SQLite
}

// Each runs fn on SQLite and, when MEDSEC_TEST_POSTGRES is set, on
// PostgreSQL.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	bs := []Backend{{Name: "sqlite"}}
	if len(storetest.Backends(t)) > 1 {
		bs = append(bs, Backend{Name: "postgres", DSN: storetest.PostgresDSN()})
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// SQLite is the embedded backend.
var SQLite = Backend{Name: "sqlite"}

// Stack is an assembled installation.
type Stack struct {
	H         *hospital.Hospital
	DB        *store.DB
	Door      *records.Door
	Audit     *audit.Log
	Engine    *lifecycle.Engine
	Provision *provision.Service
	Clock     *Clock
	// Dir is the data directory (the SQLite database, its WAL, keys and
	// checkpoints are there).
	Dir string

	// Doctor treats every patient Register makes; OtherDoctor treats
	// none. Doctor, OtherDoctor and Officer are signed in with a second
	// factor.
	Clerk, Doctor, OtherDoctor, Officer identity.Principal

	password string
}

// Start is the stack's starting time: a fixed date, so retention dates in
// tests are readable.
var Start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// New assembles an installation on b with the retention schedule (nil: the
// kr profile).
func New(t testing.TB, b Backend, schedule *lifecycle.Schedule) *Stack {
	t.Helper()
	return NewIn(t, t.TempDir(), b, schedule)
}

// NewIn is New with the data directory made in parent (benchmarks put it
// on a memory file system to generate their data quickly).
func NewIn(t testing.TB, parent string, b Backend, schedule *lifecycle.Schedule) *Stack {
	t.Helper()
	ctx := context.Background()
	s := &Stack{Clock: NewClock(Start), Dir: filepath.Join(parent, "h"), password: "correct horse battery staple 42"}
	dsn := ""
	if b.DSN != "" {
		dsn = storetest.WithSchema(b.DSN, storetest.NewSchema(t, b.DSN))
	}
	pass := []byte("life-cycle test passphrase")
	_, err := hospital.Init(ctx, hospital.InitOptions{Dir: s.Dir, Profile: "large", HospitalName: "life-cycle test hospital",
		Passphrase: pass, AdminPassword: s.password, DSN: dsn, KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if s.H, err = hospital.Open(ctx, s.Dir, hospital.OpenOptions{Passphrase: pass, DSN: dsn}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.H.Close(context.Background()) })
	s.H.SetClock(s.Clock.Now)
	s.H.Staff.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	s.DB, s.Door, s.Audit = s.H.DB, s.H.Door, s.H.Audit
	s.hireStaff(t)
	s.startEngine(t, ctx, schedule)
	return s
}

func (s *Stack) hireStaff(t testing.TB) {
	t.Helper()
	s.Clerk = s.hire(t, identity.NewStaff{Username: "reception", DisplayName: "Reception", Role: identity.RoleAdministrative, Department: "administration"})
	s.Doctor = s.signInWithTOTP(t, identity.NewStaff{Username: "dr.kim", DisplayName: "Dr Kim", Role: identity.RolePhysician, Department: "internal_medicine", Position: "attending"})
	s.OtherDoctor = s.signInWithTOTP(t, identity.NewStaff{Username: "dr.lee", DisplayName: "Dr Lee", Role: identity.RolePhysician, Department: "surgery", Position: "attending"})
	s.Officer = s.signInWithTOTP(t, identity.NewStaff{Username: "officer.han", DisplayName: "Officer Han", Role: identity.RoleSecurityOfficer, Department: "security"})
}

func (s *Stack) hire(t testing.TB, n identity.NewStaff) identity.Principal {
	t.Helper()
	n.Password = s.password
	if _, err := s.H.Staff.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	p, err := s.H.Staff.Authenticate(context.Background(), n.Username, n.Password, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signInWithTOTP hires n, enrols a second factor and signs in with it.
func (s *Stack) signInWithTOTP(t testing.TB, n identity.NewStaff) identity.Principal {
	t.Helper()
	ctx := context.Background()
	who := s.hire(t, n)
	enr, err := s.H.Staff.EnrolTOTP(ctx, who, who.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := s.Clock.Now()
	code, _ := totp.GenerateCode(enr.Secret, now)
	if err := s.H.Staff.ConfirmTOTP(ctx, who, who.ID, code); err != nil {
		t.Fatal(err)
	}
	next, _ := totp.GenerateCode(enr.Secret, now.Add(30*time.Second))
	_, token, err := s.H.Staff.Login(ctx, identity.LoginRequest{Username: n.Username, Password: s.password, TOTP: next, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.H.Staff.Sessions.Authenticate(ctx, token, "test")
	if err != nil || !p.MFA {
		t.Fatalf("sign-in of %s with a second factor: %v", n.Username, err)
	}
	return p
}

func (s *Stack) startEngine(t testing.TB, ctx context.Context, schedule *lifecycle.Schedule) {
	t.Helper()
	if schedule == nil {
		kr, _, err := lifecycle.Profile("kr")
		if err != nil {
			t.Fatal(err)
		}
		schedule = &kr
	}
	var err error
	s.Engine, err = lifecycle.New(ctx, lifecycle.Config{DB: s.DB, Door: s.Door, Audit: s.Audit, Keys: s.H.Keys,
		HospitalID: s.H.Config.Hospital.ID, Schedule: *schedule, Now: s.Clock.Now, Wall: s.Clock.Now, Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.Provision, err = provision.New(provision.Config{DB: s.DB, Door: s.Door, Audit: s.Audit, Signer: s.Engine.Signer(),
		Alerts: s.H.Alerts, Now: s.Clock.Now, Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.Engine.AddSource(s.Provision)
}

// System is the principal the command line administers provision as.
func System() identity.Principal { return identity.System("provision") }

// VerifyAudit checkpoints and verifies the audit log.
func (s *Stack) VerifyAudit(t testing.TB) audit.Verification {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Audit.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := s.H.Verifier().Verify(ctx)
	if err != nil || !v.OK {
		t.Fatalf("audit log does not verify: %v %s", err, v.Summary())
	}
	return v
}

// Events returns every audit event.
func (s *Stack) Events(t testing.TB) []audit.Event {
	t.Helper()
	var out []audit.Event
	if err := audit.Scan(context.Background(), s.DB, s.Audit.Chain(), 0, 0, func(e audit.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// EventsWith returns the audit events of one action and outcome.
func (s *Stack) EventsWith(t testing.TB, action, outcome string) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, e := range s.Events(t) {
		if e.Action == action && e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

// Register registers a patient treated by the stack's Doctor.
func (s *Stack) Register(t testing.TB, p records.Patient) records.Patient {
	t.Helper()
	p.Attending, p.CareTeam, p.ActiveEncounter = s.Doctor.ID, []string{s.Doctor.ID}, true
	if p.Department == "" {
		p.Department, p.Ward = "internal_medicine", "5A"
	}
	got, err := s.Door.RegisterPatient(context.Background(), records.Request{Who: s.Clerk, Purpose: "TREAT"}, p)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Add writes n records of class for the patient as its Doctor, effective
// at the times given (one per record; the last repeats when n is larger).
func (s *Stack) Add(t testing.TB, patientID, class string, n int, effective ...time.Time) []string {
	t.Helper()
	recs := make([]records.Record, n)
	for i := range recs {
		at := effective[min(i, len(effective)-1)]
		recs[i] = records.Record{Class: class, Code: "8867-4", Effective: at, Source: "staff:dr.kim", Payload: Observation(at, 60+i)}
	}
	ids, err := s.Door.AddRecords(context.Background(), records.Request{Who: s.Doctor, Purpose: "TREAT"}, patientID, recs)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Observation is a heart-rate Observation resource.
func Observation(at time.Time, value int) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"effectiveDateTime":%q,"valueQuantity":{"value":%d,"unit":"/min"}}`,
		at.UTC().Format(time.RFC3339), value)
}

// AddRecipient registers a recipient with fresh keys and returns them.
func (s *Stack) AddRecipient(t testing.TB, id, kind string, a provision.Agreement) provision.RecipientKeys {
	t.Helper()
	k, err := provision.GenerateRecipientKeys(id)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Provision.AddRecipient(context.Background(), System(), provision.Recipient{ID: id, Name: "Test " + kind + " " + id,
		Kind: kind, AgeRecipient: k.AgeRecipient, ReceiptKey: k.ReceiptKey, Agreement: a})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Portal signs the patient in to the portal, as the registration desk
// hands out access.
func (s *Stack) Portal(t testing.TB, patientID string) records.PatientPrincipal {
	t.Helper()
	ctx := context.Background()
	token, _, err := s.Door.IssuePortalAccess(ctx, records.Request{Who: s.Clerk, Purpose: "TREAT"}, patientID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Door.AuthenticatePatient(ctx, token, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
