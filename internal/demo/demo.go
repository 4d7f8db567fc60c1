// Package demo runs a small hospital's medical-data life cycle in one
// process, on the embedded database, and reports what happened: patients
// registered with sealed identities, records written and read through the
// one door, the audit log verified, a patient destroyed by crypto-shredding
// while the log still verifies, and no identifying value left in plaintext
// in any file. It is `medsec demo`; it grows as capabilities land.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/synth"
)

// Options configures a run.
type Options struct {
	// Dir is the data directory; empty means a temporary one, removed at
	// the end unless Keep is set.
	Dir  string
	Keep bool
	// Passphrase of the demo's key file; random when empty.
	Passphrase []byte
	Patients   int
	Seed       uint64
	// KDF lowers the key-file cost in tests.
	KDF *keys.KDFParams
	// Log receives one line per step as it happens (nil: silent).
	Log func(format string, args ...any)
}

// Report is what the demo did, in figures a person can read in ten seconds
// and a script can check.
type Report struct {
	Dir         string          `json:"data_dir"`
	Hospital    string          `json:"hospital"`
	Patients    []PatientReport `json:"patients"`
	Records     RecordsReport   `json:"records"`
	Audit       AuditReport     `json:"audit"`
	Destruction DestroyReport   `json:"destruction"`
	// Access is what the shipped policy decided through the door for the
	// four cases of issue 4 ("allow", "deny", "allow-flagged").
	Access    map[string]string `json:"access"`
	Provision ProvisionReport   `json:"provision"`
	Erasure   ErasureReport     `json:"erasure"`
	Trace     TraceReport       `json:"trace"`
	PHD       PHDReport         `json:"phd"`
	Imaging   ImagingReport     `json:"imaging"`
	// Dataset is the consented, de-identified AI dataset of issue 6.
	Dataset    DatasetReport   `json:"dataset"`
	Plaintext  PlaintextReport `json:"plaintext"`
	Staff      []StaffReport   `json:"staff"`
	DurationMS int64           `json:"duration_ms"`
}

// PatientReport lists a synthetic patient's identifying values, so a test
// can search the data directory for them.
type PatientReport struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	RRN   string `json:"rrn"`
	Phone string `json:"phone"`
}

// RecordsReport counts the clinical records written and read.
type RecordsReport struct {
	Stored int `json:"stored"`
	Read   int `json:"read"`
}

// AuditReport is the state of the audit log at the end.
type AuditReport struct {
	Events     uint64 `json:"events"`
	Verified   bool   `json:"verified"`
	Checkpoint uint64 `json:"checkpoint"`
	Summary    string `json:"summary"`
}

// DestroyReport shows a crypto-shredding.
type DestroyReport struct {
	Patient             string `json:"patient"`
	Pseudonym           string `json:"pseudonym"`
	ReadError           string `json:"read_error"`
	AuditVerifiedAfter  bool   `json:"audit_verified_after"`
	RecordsUnreadable   bool   `json:"records_unreadable"`
	DemographicsDeleted bool   `json:"demographics_deleted"`
}

// PlaintextReport is the result of searching every file of the data
// directory for the patients' identifying values.
type PlaintextReport struct {
	FilesScanned int      `json:"files_scanned"`
	Hits         int      `json:"hits"`
	Where        []string `json:"where,omitempty"`
}

// StaffReport is a demo account a newcomer can log in with.
type StaffReport struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Password string `json:"password"`
	// TOTPSecret is the authenticator secret of a privileged account, so a
	// newcomer can sign in to the console with an authenticator app.
	TOTPSecret string `json:"totp_secret,omitempty"`
}

// Run performs the demo.
func Run(ctx context.Context, opt Options) (*Report, error) {
	start := time.Now()
	s, err := newScenario(ctx, &opt)
	if err != nil {
		return nil, err
	}
	defer s.cleanup()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"staff", s.hireStaff},
		{"register patients", s.registerPatients},
		{"write records", s.writeRecords},
		{"read as a physician", s.readAsPhysician},
		{"access decisions", s.checkAccess},
		{"device readings to the hospital", s.sendDeviceReadings},
		{"import imaging media", s.importImaging},
		{"provide a prescription to a pharmacy", s.providePrescription},
		{"refer to a hospital, report to an agency", s.referAndReport},
		{"trace a patient", s.traceBefore},
		{"erase a patient on request", s.eraseOnRequest},
		{"trace the erased patient", s.traceAfter},
		{"build a consented AI dataset", s.buildDataset},
		{"verify the audit log", s.verifyAudit},
		{"crypto-shred a patient", s.destroyPatient},
	}
	for _, st := range steps {
		if err := st.fn(ctx); err != nil {
			return nil, fmt.Errorf("demo step %q: %w", st.name, err)
		}
	}
	// Search the files while the database is open (its WAL and shared
	// memory exist) and again after it closed.
	if err := s.scanPlaintext("with the database open (WAL and shared memory present)"); err != nil {
		return nil, err
	}
	if err := s.close(ctx); err != nil {
		return nil, err
	}
	if err := s.scanPlaintext("after the database closed"); err != nil {
		return nil, err
	}
	s.rep.DurationMS = time.Since(start).Milliseconds()
	return &s.rep, nil
}

// scenario is one run's state.
type scenario struct {
	opt   *Options
	h     *hospital.Hospital
	rep   Report
	tmp   bool
	staff map[string]identity.Principal
	// extraNeedles are more identifying values the final plaintext search
	// looks for (the research cohort's).
	extraNeedles [][]byte
	people       []synth.Person
	patient      []records.Patient
	life         *lifeParts
}

func newScenario(ctx context.Context, opt *Options) (*scenario, error) {
	s := &scenario{opt: opt, staff: map[string]identity.Principal{}}
	if opt.Patients == 0 {
		opt.Patients = 6
	}
	if opt.Seed == 0 {
		opt.Seed = 2026
	}
	if opt.Log == nil {
		opt.Log = func(string, ...any) {}
	}
	if len(opt.Passphrase) == 0 {
		b := make([]byte, 16)
		rand.Read(b)
		opt.Passphrase = []byte(hex.EncodeToString(b))
	}
	if opt.Dir == "" {
		d, err := os.MkdirTemp("", "medsec-demo-")
		if err != nil {
			return nil, err
		}
		opt.Dir, s.tmp = d, true
	}
	kdf := keys.DefaultKDF
	if opt.KDF != nil {
		kdf = *opt.KDF
	}
	adminPassword := randomPassword()
	admin, err := hospital.Init(ctx, hospital.InitOptions{Dir: opt.Dir, Profile: "large", HospitalName: "medsec demo hospital",
		Passphrase: opt.Passphrase, AdminPassword: adminPassword, KDF: kdf})
	if err != nil {
		s.cleanup()
		return nil, err
	}
	if s.h, err = hospital.Open(ctx, opt.Dir, hospital.OpenOptions{Passphrase: opt.Passphrase}); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.confirmAdmin(ctx, admin, adminPassword); err != nil {
		s.cleanup()
		return nil, err
	}
	s.rep.Dir, s.rep.Hospital = opt.Dir, s.h.Config.Hospital.Name
	opt.Log("initialized a large-profile hospital in %s", opt.Dir)
	return s, nil
}

func (s *scenario) cleanup() {
	if s.h != nil {
		s.h.Close(context.Background())
		s.h = nil
	}
	if s.tmp && !s.opt.Keep {
		os.RemoveAll(s.opt.Dir)
		s.rep.Dir = ""
	}
}

func (s *scenario) close(ctx context.Context) error {
	err := s.h.Close(ctx)
	s.h = nil
	return err
}

func randomPassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "demo-" + hex.EncodeToString(b)
}

var errStep = errors.New("unexpected outcome")
