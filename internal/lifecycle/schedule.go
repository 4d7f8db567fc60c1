package lifecycle

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ScheduleFile is the retention schedule a hospital edits, in its data
// directory. Without it the example profile of the configured jurisdiction
// applies.
const ScheduleFile = "retention.yaml"

// Classes with a meaning of their own to the retention run.
const (
	// ClassDemographics is the patient register: when it expires and every
	// record of the patient has expired, the patient goes whole
	// (crypto-shredding).
	ClassDemographics = "demographics"
	// ClassAudit is the audit log: append-only and free of PHI, it is never
	// deleted by a run; its rule states the minimum the log is kept.
	ClassAudit = "audit"
)

//go:embed profiles/*.yaml
var profiles embed.FS

// Schedule is a retention schedule: one rule per data class.
type Schedule struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Rules       []Rule `yaml:"rules" json:"rules"`
}

// Rule keeps one class of data for a period.
type Rule struct {
	Class string `yaml:"class" json:"class"`
	Keep  Period `yaml:"keep" json:"keep"`
	// Mandatory: law requires keeping the data this long, so a patient's
	// erasure request waits for it. Otherwise the period is the hospital's
	// own upper bound.
	Mandatory bool `yaml:"mandatory,omitempty" json:"mandatory,omitempty"`
	// LegalHold keeps the whole class whatever its age, until lifted.
	LegalHold  bool   `yaml:"legal_hold,omitempty" json:"legal_hold,omitempty"`
	HoldReason string `yaml:"hold_reason,omitempty" json:"hold_reason,omitempty"`
	// Basis cites the law or the hospital rule, shown in refusals and on
	// destruction certificates.
	Basis string `yaml:"basis" json:"basis"`
}

// ID names the rule in refusals, certificates and audit events.
func (r Rule) ID(schedule string) string { return schedule + "/" + r.Class }

// Rule returns the rule of class.
func (s Schedule) Rule(class string) (Rule, bool) {
	i := slices.IndexFunc(s.Rules, func(r Rule) bool { return r.Class == class })
	if i < 0 {
		return Rule{}, false
	}
	return s.Rules[i], true
}

// Profiles lists the example schedules shipped with medsec.
func Profiles() []string {
	names, _ := fs.Glob(profiles, "profiles/*.yaml")
	for i, n := range names {
		names[i] = strings.TrimSuffix(filepath.Base(n), ".yaml")
	}
	return names
}

// Profile returns a shipped example schedule (kr, us) and its YAML text.
func Profile(name string) (Schedule, []byte, error) {
	raw, err := profiles.ReadFile("profiles/" + name + ".yaml")
	if err != nil {
		return Schedule{}, nil, fmt.Errorf("no retention profile %q: choose one of %s", name, strings.Join(Profiles(), ", "))
	}
	s, err := ParseSchedule(raw)
	return s, raw, err
}

// LoadSchedule reads the schedule of a data directory: its retention.yaml
// when there is one, else the example profile named by jurisdiction.
func LoadSchedule(dataDir, jurisdiction string) (Schedule, error) {
	path := filepath.Join(dataDir, ScheduleFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s, _, err := Profile(jurisdiction)
		return s, err
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("read retention schedule: %w", err)
	}
	s, err := ParseSchedule(raw)
	if err != nil {
		return Schedule{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSchedule reads and validates a schedule in YAML.
func ParseSchedule(raw []byte) (Schedule, error) {
	var s Schedule
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Schedule{}, fmt.Errorf("retention schedule: %w", err)
	}
	return s, s.Validate()
}

var classPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// longestKeep bounds a period: a typo such as 1000y is refused.
const longestKeep = 150

// Validate says what is wrong with the schedule, all at once.
func (s Schedule) Validate() error {
	var errs []error
	if !classPattern.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("name %q: lower-case letters, digits and _", s.Name))
	}
	seen := map[string]bool{}
	for i, r := range s.Rules {
		at := fmt.Sprintf("rule %d (%s)", i+1, r.Class)
		switch {
		case !classPattern.MatchString(r.Class):
			errs = append(errs, fmt.Errorf("%s: class must be lower-case letters, digits and _", at))
		case seen[r.Class]:
			errs = append(errs, fmt.Errorf("%s: a second rule for the class; one rule per class", at))
		}
		seen[r.Class] = true
		errs = append(errs, r.validate(at)...)
	}
	if len(s.Rules) == 0 {
		errs = append(errs, errors.New("no rules: without rules nothing would ever be destroyed"))
	}
	return oneError(errs)
}

// oneError joins problems into one line a person reads at once.
func oneError(errs []error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

func (r Rule) validate(at string) []error {
	var errs []error
	if r.Keep.IsZero() {
		errs = append(errs, fmt.Errorf("%s: keep must be a positive period (10y, 6mo, 30d)", at))
	}
	if r.Keep.Years+r.Keep.Months/12+r.Keep.Days/365 > longestKeep {
		errs = append(errs, fmt.Errorf("%s: keep %s is longer than %d years; is it a typo?", at, r.Keep, longestKeep))
	}
	if strings.TrimSpace(r.Basis) == "" {
		errs = append(errs, fmt.Errorf("%s: basis must cite the law or hospital rule", at))
	}
	if r.LegalHold && strings.TrimSpace(r.HoldReason) == "" {
		errs = append(errs, fmt.Errorf("%s: a legal hold needs hold_reason", at))
	}
	return errs
}

// cutoff is the effective time before which data of the rule has expired
// at now.
func (r Rule) cutoff(now time.Time) time.Time { return r.Keep.Before(now) }
