package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Sentinel errors callers branch on.
var (
	// ErrRefused means a destruction was refused because law or a legal
	// hold forbids it now; the *RefusedError names the rule or hold and the
	// date it becomes possible. Tell the patient; nothing was destroyed.
	ErrRefused = errors.New("destruction refused")
	// ErrClock means the clock a run was asked to use is not believable
	// (far ahead of or behind this machine's, or before the last run).
	// Fix the clock or the --now value; nothing was destroyed.
	ErrClock = errors.New("clock refused")
	// ErrInvalid means the input was refused before anything happened; the
	// message says what to fix.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound means no such hold or certificate.
	ErrNotFound = errors.New("not found")
	// ErrBadCertificate means a destruction certificate did not verify
	// against the hospital key: it was changed or signed by another key.
	ErrBadCertificate = errors.New("destruction certificate does not verify")
)

// Jobs: the principals medsec's own life-cycle work runs as. The policy
// decides them like anyone else (role "system").
const (
	// JobRetention runs retention and erasures.
	JobRetention = "lifecycle"
	// JobPatientRequest serves a patient's requests for their own data
	// (a copy, the access history, the data map).
	JobPatientRequest = "patient-request"
)

// PurposeOperations is the purpose of use of life-cycle work: healthcare
// operations (HL7 HOPERAT), which includes keeping to retention law.
const PurposeOperations = "HOPERAT"

// ClockLimits bound how far a run's clock may stray from the machine's.
type ClockLimits struct {
	// Ahead: a clock later than the machine's by more would destroy data
	// before its time. Behind: a clock earlier by more is a broken clock.
	Ahead, Behind time.Duration
}

// DefaultClockLimits allow a day ahead and thirty days behind.
var DefaultClockLimits = ClockLimits{Ahead: 24 * time.Hour, Behind: 30 * 24 * time.Hour}

// Config assembles an Engine.
type Config struct {
	DB    *store.DB
	Door  *records.Door
	Audit *audit.Log
	Keys  *keys.Keyring
	// HospitalID names the hospital's signing key (config hospital.id).
	HospitalID string
	Schedule   Schedule
	// Sources report copies outside the sealed records (provision
	// packages, gateway queues, imaging, AI datasets) to the data map.
	Sources []Source
	// Now is the job's clock (a run's --now); Wall the machine's clock it
	// is checked against. Both default to time.Now.
	Now, Wall func() time.Time
	Clock     ClockLimits
	// Operator names who started the work (e.g. "cli:root"), for the audit
	// log's source field.
	Operator string
}

// Engine runs retention, patients' requests and the data map.
type Engine struct {
	cfg    Config
	signer *Signer
}

// New returns an Engine.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.DB == nil || cfg.Door == nil || cfg.Audit == nil || cfg.Keys == nil || cfg.HospitalID == "" {
		return nil, errors.New("lifecycle: the engine needs a database, the door, the audit log, the keyring and the hospital id")
	}
	if err := cfg.Schedule.Validate(); err != nil {
		return nil, fmt.Errorf("retention schedule %q: %w", cfg.Schedule.Name, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wall == nil {
		cfg.Wall = time.Now
	}
	if cfg.Clock == (ClockLimits{}) {
		cfg.Clock = DefaultClockLimits
	}
	s, err := HospitalSigner(ctx, cfg.Keys, cfg.HospitalID)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, signer: s}, nil
}

// Signer is the hospital's signing key.
func (e *Engine) Signer() *Signer { return e.signer }

// Schedule is the retention schedule in force.
func (e *Engine) Schedule() Schedule { return e.cfg.Schedule }

// AddSource connects a place that holds copies of patient data.
func (e *Engine) AddSource(s Source) { e.cfg.Sources = append(e.cfg.Sources, s) }

func (e *Engine) principal(job string) identity.Principal {
	p := identity.System(job)
	if e.cfg.Operator != "" {
		p.Source = e.cfg.Operator
	}
	return p
}

func (e *Engine) request(job string) records.Request {
	return records.Request{Who: e.principal(job), Purpose: PurposeOperations}
}

// event is an audit event of the engine's own (no PHI: the patient by
// pseudonym).
func (e *Engine) event(job, action, patient, resource, outcome, reason string) audit.Event {
	p := e.principal(job)
	return audit.Event{Time: e.cfg.Wall(), Actor: p.ID, Role: p.Role, Action: action, Purpose: PurposeOperations,
		Patient: patient, Resource: resource, Outcome: outcome, Source: p.Source, Reason: reason}
}

// ClockError says why a clock was refused.
type ClockError struct {
	Now, Wall time.Time
	Reason    string
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("clock refused: %s is %s; nothing was destroyed", e.Now.UTC().Format(time.RFC3339), e.Reason)
}

// Is makes errors.Is(err, ErrClock) true.
func (e *ClockError) Is(target error) bool { return target == ErrClock }

// checkClock refuses a job clock far from the machine's or before the last
// run, and audits the refusal.
func (e *Engine) checkClock(ctx context.Context, now time.Time) error {
	cerr := e.clockProblem(ctx, now)
	if cerr == nil {
		return nil
	}
	var ce *ClockError
	if !errors.As(cerr, &ce) {
		return cerr
	}
	if _, err := e.cfg.Audit.Append(ctx, e.event(JobRetention, "lifecycle.run", "", "Schedule/"+e.cfg.Schedule.Name, audit.Denied, ce.Error())); err != nil {
		return errors.Join(cerr, err)
	}
	return cerr
}

func (e *Engine) clockProblem(ctx context.Context, now time.Time) error {
	wall := e.cfg.Wall()
	if err := CheckClock(now, wall, e.cfg.Clock); err != nil {
		return err
	}
	last, err := e.lastRun(ctx)
	if err != nil {
		return err
	}
	if now.Before(last) {
		return &ClockError{Now: now, Wall: wall, Reason: "before the last retention run at " + last.UTC().Format(time.RFC3339) + ": the clock went backwards"}
	}
	return nil
}

// CheckClock refuses a job clock now that strays from the machine's clock
// wall by more than the limits allow (a *ClockError).
func CheckClock(now, wall time.Time, l ClockLimits) error {
	switch {
	case now.After(wall.Add(l.Ahead)):
		return &ClockError{Now: now, Wall: wall, Reason: fmt.Sprintf("%s ahead of this machine's clock (at most %s allowed): it would destroy data before its time",
			roundDuration(now.Sub(wall)), l.Ahead)}
	case now.Before(wall.Add(-l.Behind)):
		return &ClockError{Now: now, Wall: wall, Reason: fmt.Sprintf("%s behind this machine's clock (at most %s allowed)",
			roundDuration(wall.Sub(now)), l.Behind)}
	}
	return nil
}

// roundDuration says a clock's distance in words a person reads at once.
func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func (e *Engine) lastRun(ctx context.Context) (time.Time, error) {
	var at *int64
	if err := e.cfg.DB.QueryRow(ctx, `SELECT MAX(run_at) FROM lifecycle_runs`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("read last retention run: %w", err)
	}
	if at == nil {
		return time.Time{}, nil
	}
	return time.Unix(0, *at), nil
}

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// checkText refuses empty, over-long or control-character input typed by
// staff (reasons, request numbers) before it reaches the audit log.
func checkText(what, s string, maxLen int) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, what, maxLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: %s holds control characters", ErrInvalid, what)
	}
	return nil
}
