package tabular

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"

	"go.yaml.in/yaml/v3"
)

// LMode chooses the l-diversity variant.
type LMode string

// The l-diversity variants.
const (
	// LDistinct requires l distinct sensitive values in every class.
	LDistinct LMode = "distinct"
	// LEntropy requires the entropy of every class's sensitive values to be
	// at least log(l).
	LEntropy LMode = "entropy"
)

// Metric is the information loss the search minimizes.
type Metric string

// The information-loss metrics the search can minimize.
const (
	// MetricEntropy is non-uniform entropy: the bits of information lost
	// about each original cell, suppressed cells counting as fully
	// generalized. It follows the data's distribution, so it prefers
	// generalizations that merge rare values.
	MetricEntropy Metric = "entropy"
	// MetricPrecision is Sweeney's precision loss: the average share of each
	// hierarchy climbed, suppressed records counting as fully generalized.
	MetricPrecision Metric = "precision"
)

// Spec says what happens to every column of a table. A column the spec does
// not name is an error, so nothing passes through unreviewed.
type Spec struct {
	// QuasiIdentifiers are generalized along their hierarchies.
	QuasiIdentifiers []QI `yaml:"quasi_identifiers"`
	// Sensitive is the attribute l-diversity and t-closeness protect; it is
	// kept as it is.
	Sensitive string `yaml:"sensitive,omitempty"`
	// K is the least size of an equivalence class (1 when unset).
	K int `yaml:"k,omitempty"`
	// L is the least diversity of the sensitive attribute in a class.
	L     int   `yaml:"l,omitempty"`
	LMode LMode `yaml:"l_mode,omitempty"`
	// T is the largest earth mover's distance between a class's sensitive
	// distribution and the whole table's (0 turns t-closeness off).
	T float64 `yaml:"t,omitempty"`
	// TDistance is "ordered" (numeric sensitive values) or "equal"
	// (categories); unset picks ordered when every value is a number.
	TDistance string `yaml:"t_distance,omitempty"`
	// MaxSuppression is the largest share of records (0..1) that may be
	// suppressed to reach the model.
	MaxSuppression float64 `yaml:"max_suppression,omitempty"`
	// SuppressAs is "record" (remove suppressed rows, the default) or
	// "cells" (keep them with every quasi-identifier set to "*").
	SuppressAs string `yaml:"suppress_as,omitempty"`
	// Metric is the information loss to minimize (default entropy).
	Metric Metric `yaml:"metric,omitempty"`

	// Keep lists columns copied unchanged.
	Keep []string `yaml:"keep,omitempty"`
	// Drop lists columns removed (direct identifiers nobody needs).
	Drop []string `yaml:"drop,omitempty"`
	// Pseudonymize lists columns replaced by keyed pseudonyms.
	Pseudonymize []string `yaml:"pseudonymize,omitempty"`
	// DateShift moves each patient's dates by one keyed offset.
	DateShift *DateShift `yaml:"date_shift,omitempty"`
	// MicroAggregate replaces numbers by the mean of their group.
	MicroAggregate *MicroAggregate `yaml:"micro_aggregate,omitempty"`

	// MaxRisk refuses a result whose highest prosecutor risk is above it
	// (0 means no limit).
	MaxRisk float64 `yaml:"max_risk,omitempty"`
	// RiskThreshold is the risk above which a record counts as at risk
	// (default 0.2).
	RiskThreshold float64 `yaml:"risk_threshold,omitempty"`
}

// QI is a quasi-identifier and how it may be generalized.
type QI struct {
	Column string `yaml:"column"`
	// Hierarchy is a built-in kind (see BuiltinHierarchy).
	Hierarchy string `yaml:"hierarchy,omitempty"`
	// HierarchyFile is a hierarchy file relative to the spec; ReadSpec and
	// LoadHierarchies parse it into Custom.
	HierarchyFile string `yaml:"hierarchy_file,omitempty"`
	// MinLevel and MaxLevel bound the search (e.g. min_level 1 on age
	// always top-codes ages over 89). MaxLevel nil means the top.
	MinLevel int  `yaml:"min_level,omitempty"`
	MaxLevel *int `yaml:"max_level,omitempty"`
	// Custom is a hierarchy given in code or loaded from HierarchyFile.
	Custom *Hierarchy `yaml:"-"`
}

// DateShift moves all dates of a patient by the same number of days, derived
// from a keyed hash of the patient identifier, so intervals between a
// patient's events survive while the calendar dates do not.
type DateShift struct {
	Columns       []string `yaml:"columns"`
	PatientColumn string   `yaml:"patient_column"`
	// MaxDays bounds the shift to ±MaxDays (default 365).
	MaxDays int `yaml:"max_days,omitempty"`
}

// MicroAggregate sorts each column's numbers, cuts them into groups of at
// least K and replaces each by its group's mean.
type MicroAggregate struct {
	Columns []string `yaml:"columns"`
	// K is the least group size (default the spec's K, at least 2).
	K int `yaml:"k,omitempty"`
}

// ReadSpec reads a YAML spec and the hierarchy files it names, relative to
// the spec's own directory in fsys. Unknown fields are errors, so a typo
// cannot silently switch a protection off.
func ReadSpec(fsys fs.FS, name string) (Spec, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return Spec{}, fmt.Errorf("read spec: %w", err)
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("read spec %s: %v: %w", name, err, ErrSpec)
	}
	if err := s.LoadHierarchies(fsys, path.Dir(name)); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// LoadHierarchies parses the hierarchy files the quasi-identifiers name,
// relative to dir in fsys, into their Custom hierarchies.
func (s *Spec) LoadHierarchies(fsys fs.FS, dir string) error {
	for i := range s.QuasiIdentifiers {
		q := &s.QuasiIdentifiers[i]
		if q.HierarchyFile == "" || q.Custom != nil {
			continue
		}
		f, err := fsys.Open(path.Join(dir, q.HierarchyFile))
		if err != nil {
			return fmt.Errorf("hierarchy for %q: %w", q.Column, err)
		}
		h, err := ParseHierarchy(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("hierarchy for %q: %w", q.Column, err)
		}
		q.Custom = h
	}
	return nil
}

func (q QI) hierarchy() (*Hierarchy, error) {
	switch {
	case q.Custom != nil:
		return q.Custom, nil
	case q.HierarchyFile != "":
		return nil, fmt.Errorf("quasi-identifier %q: hierarchy file %q not loaded (use ReadSpec or LoadHierarchies): %w", q.Column, q.HierarchyFile, ErrSpec)
	case q.Hierarchy == "":
		return nil, fmt.Errorf("quasi-identifier %q has no hierarchy: %w", q.Column, ErrSpec)
	}
	return BuiltinHierarchy(q.Hierarchy)
}

// withDefaults fills the defaults the zero values stand for.
func (s Spec) withDefaults() Spec {
	if s.K < 1 {
		s.K = 1
	}
	if s.LMode == "" {
		s.LMode = LDistinct
	}
	if s.SuppressAs == "" {
		s.SuppressAs = "record"
	}
	if s.Metric == "" {
		s.Metric = MetricEntropy
	}
	if s.RiskThreshold == 0 {
		s.RiskThreshold = 0.2
	}
	if s.DateShift != nil && s.DateShift.MaxDays == 0 {
		d := *s.DateShift
		d.MaxDays = 365
		s.DateShift = &d
	}
	if s.MicroAggregate != nil && s.MicroAggregate.K == 0 {
		m := *s.MicroAggregate
		m.K = max(s.K, 2)
		s.MicroAggregate = &m
	}
	return s
}

// Validate checks the spec against the table's columns: every column named
// exists, has exactly one role, and every table column has a role.
func (s Spec) Validate(t *Table) error {
	s = s.withDefaults()
	if err := s.checkModel(); err != nil {
		return err
	}
	roles := make(map[string]string)
	for _, r := range s.roles() {
		if t.Index(r.column) < 0 {
			return fmt.Errorf("spec names column %q (%s) but the table has no such column: %w", r.column, r.role, ErrSpec)
		}
		if prev, dup := roles[r.column]; dup {
			return fmt.Errorf("column %q is both %s and %s; give it one role: %w", r.column, prev, r.role, ErrSpec)
		}
		roles[r.column] = r.role
	}
	for _, c := range t.Columns {
		if _, ok := roles[c]; !ok {
			return fmt.Errorf("column %q is not named in the spec (keep, drop, pseudonymize, date_shift, micro_aggregate, quasi_identifiers or sensitive); refusing to pass it through unreviewed: %w", c, ErrSpec)
		}
	}
	if d := s.DateShift; d != nil && t.Index(d.PatientColumn) < 0 {
		return fmt.Errorf("date_shift patient_column %q is not a column of the table: %w", d.PatientColumn, ErrSpec)
	}
	return nil
}

type role struct{ column, role string }

func (s Spec) roles() []role {
	var out []role
	add := func(cols []string, r string) {
		for _, c := range cols {
			out = append(out, role{c, r})
		}
	}
	for _, q := range s.QuasiIdentifiers {
		out = append(out, role{q.Column, "a quasi-identifier"})
	}
	if s.Sensitive != "" {
		out = append(out, role{s.Sensitive, "the sensitive attribute"})
	}
	add(s.Keep, "kept")
	add(s.Drop, "dropped")
	add(s.Pseudonymize, "pseudonymized")
	if s.DateShift != nil {
		add(s.DateShift.Columns, "date-shifted")
	}
	if s.MicroAggregate != nil {
		add(s.MicroAggregate.Columns, "micro-aggregated")
	}
	return out
}

func (s Spec) checkModel() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, ErrSpec)...)
	}
	switch {
	case s.L < 0 || s.L == 1:
		return bad("l = %d: l-diversity needs l of at least 2", s.L)
	case s.LMode != LDistinct && s.LMode != LEntropy:
		return bad("l_mode %q: want distinct or entropy", s.LMode)
	case !(s.T >= 0 && s.T <= 1):
		return bad("t = %v: want 0 < t ≤ 1", s.T)
	case (s.L > 0 || s.T > 0) && s.Sensitive == "":
		return bad("l-diversity and t-closeness need a sensitive attribute")
	case s.TDistance != "" && s.TDistance != "ordered" && s.TDistance != "equal":
		return bad("t_distance %q: want ordered or equal", s.TDistance)
	case !(s.MaxSuppression >= 0 && s.MaxSuppression < 1):
		return bad("max_suppression = %v: want a share from 0 to below 1", s.MaxSuppression)
	case s.SuppressAs != "record" && s.SuppressAs != "cells":
		return bad("suppress_as %q: want record or cells", s.SuppressAs)
	case s.Metric != MetricEntropy && s.Metric != MetricPrecision:
		return bad("metric %q: want entropy or precision", s.Metric)
	case !(s.MaxRisk >= 0 && s.MaxRisk <= 1) || !(s.RiskThreshold > 0 && s.RiskThreshold <= 1):
		return bad("max_risk and risk_threshold are shares from 0 to 1")
	case len(s.QuasiIdentifiers) > 0 && s.K < 2 && s.L == 0 && s.T == 0:
		return bad("quasi-identifiers given but no privacy model: set k (at least 2), l or t")
	case len(s.QuasiIdentifiers) > 32:
		return bad("%d quasi-identifiers: at most 32", len(s.QuasiIdentifiers))
	case s.DateShift != nil && (s.DateShift.MaxDays < 1 || s.DateShift.PatientColumn == ""):
		return bad("date_shift needs patient_column and max_days of at least 1")
	case s.MicroAggregate != nil && s.MicroAggregate.K < 2:
		return bad("micro_aggregate k must be at least 2")
	}
	return nil
}
