package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/records"
)

// Purposes a dataset may be made for (HL7 PurposeOfUse).
const (
	PurposeResearch = "HRESCH"
	PurposeTraining = "MLTRAINING"
)

// Row kinds: one row per record of the cohort's classes, or one per patient.
const (
	RowsRecord  = "record"
	RowsPatient = "patient"
)

// Formats of the data file.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
	FormatNDJSON  = "ndjson"
)

// DefaultMaxRisk is the highest prosecutor risk a dataset may have when its
// spec sets none: one in five, the usual limit for data shared with a
// trusted research team.
const DefaultMaxRisk = 0.2

// Spec says what a dataset holds and how it is protected. It is read from
// YAML; an unknown key is an error, so a typo cannot switch a protection
// off.
type Spec struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Purpose is HRESCH or MLTRAINING: the researcher's reads are decided
	// for it and only patients who consented to it are included.
	Purpose string `yaml:"purpose"`
	Cohort  Cohort `yaml:"cohort"`
	// Rows is "record" (default: a row per record of the cohort's classes)
	// or "patient" (a row per patient, record fields from their latest
	// record).
	Rows   string  `yaml:"rows,omitempty"`
	Fields []Field `yaml:"fields"`
	// FreeText names the columns redacted as clinical free text.
	FreeText *FreeText `yaml:"free_text,omitempty"`
	// Deid is the de-identification of the table (package tabular's spec):
	// every field needs a role there (free-text columns are kept as
	// redacted). MaxRisk defaults to DefaultMaxRisk.
	Deid tabular.Spec `yaml:"deid"`
	// Format is parquet (default), csv or ndjson; a command-line flag wins.
	Format string `yaml:"format,omitempty"`
	// LinkWith names an earlier, complete dataset (ds_…) of the same
	// purpose whose secret this one reuses: the same patient gets the same
	// pseudonym and date shift in both, so a follow-up extract joins the
	// first. Without it every dataset has a fresh secret and no two can be
	// joined. Each release's risk is measured on its own, not on the join.
	LinkWith string `yaml:"link_with,omitempty"`
}

// Cohort names the patients and records a dataset draws on.
type Cohort struct {
	Departments []string `yaml:"departments,omitempty"`
	// Classes are the record classes read (observation, encounter, note,
	// order, medication); with rows: record each record becomes a row.
	Classes []string `yaml:"classes,omitempty"`
	// Codes keep only records with one of these codes (LOINC, ICD-10 …).
	Codes []string `yaml:"codes,omitempty"`
	// From and To (YYYY-MM-DD) bound the records' effective dates, [From, To).
	From string `yaml:"from,omitempty"`
	To   string `yaml:"to,omitempty"`
}

// Field is one column of the dataset and where its value comes from.
type Field struct {
	Name string `yaml:"name"`
	// From is a source: patient.id, patient.name, patient.rrn, patient.mrn,
	// patient.phone, patient.birth_date, patient.birth_year, patient.age,
	// patient.sex, patient.address, patient.department, patient.ward;
	// record.id, record.class, record.code, record.effective (date),
	// record.effective_time, record.source, record.text (the payload as
	// text), record.payload.PATH (a value of a JSON payload, PATH dotted,
	// array positions as numbers); count.CLASS (rows: patient).
	From string `yaml:"from"`
}

// FreeText configures the redaction of free-text columns.
type FreeText struct {
	Columns []string `yaml:"columns"`
	// Mode is "surrogates" (default: realistic fake values, the same for
	// the same person across the dataset) or "tags" ("[NAME]").
	Mode string `yaml:"mode,omitempty"`
	// MinConfidence drops weaker findings (0: the redactor's default).
	MinConfidence float64 `yaml:"min_confidence,omitempty"`
}

// Text modes.
const (
	TextSurrogates = "surrogates"
	TextTags       = "tags"
)

var patientSources = []string{"id", "name", "rrn", "mrn", "phone", "birth_date", "birth_year", "age", "sex", "address", "department", "ward"}
var recordSources = []string{"id", "class", "code", "effective", "effective_time", "source", "text"}

// directIdentifiers may only be dropped or pseudonymized.
var directIdentifiers = []string{"patient.id", "patient.name", "patient.rrn", "patient.mrn", "patient.phone", "record.id"}

// researchClasses are the record classes a cohort may read.
var researchClasses = []string{records.ClassObservation, records.ClassEncounter, records.ClassNote, records.ClassOrder, records.ClassMedication}

// ParseSpec reads a YAML spec; hierarchy files it names are read from fsys
// relative to dir. It checks everything that can be checked before a
// patient is read and says exactly what is wrong.
func ParseSpec(data []byte, fsys fs.FS, dir string) (*Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("read dataset spec: %s: %w", flatten(err.Error()), ErrSpec)
	}
	if fsys != nil {
		if err := s.Deid.LoadHierarchies(fsys, dir); err != nil {
			return nil, fmt.Errorf("dataset spec: %v: %w", err, ErrSpec)
		}
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// flatten puts a multi-line message (the YAML decoder lists one problem
// per line) on one line, for a command's one-line error.
func flatten(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

// ReadSpec reads the spec file name of fsys (hierarchy files relative to it).
func ReadSpec(fsys fs.FS, name string) (*Spec, []byte, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, nil, fmt.Errorf("read dataset spec: %w", err)
	}
	s, err := ParseSpec(data, fsys, path.Dir(name))
	return s, data, err
}

// SpecDigest is the SHA-256 of the spec's bytes, hex.
func SpecDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Check validates the spec on its own (no data needed).
func (s *Spec) Check() error {
	for _, check := range []func() error{s.checkHead, s.checkCohort, s.checkFields, s.checkFreeText, s.checkRoles} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func specErr(format string, a ...any) error {
	return fmt.Errorf("dataset spec: "+format+": %w", append(a, ErrSpec)...)
}

func (s *Spec) checkHead() error {
	switch {
	case strings.TrimSpace(s.Name) == "" || len(s.Name) > 100 || strings.ContainsAny(s.Name, "\n\r/\\"):
		return specErr("name must be 1 to 100 characters on one line, without slashes")
	case s.Purpose != PurposeResearch && s.Purpose != PurposeTraining:
		return specErr("purpose %q: want %s (research) or %s (machine-learning training)", s.Purpose, PurposeResearch, PurposeTraining)
	case s.Rows != "" && s.Rows != RowsRecord && s.Rows != RowsPatient:
		return specErr("rows %q: want record or patient", s.Rows)
	case s.Format != "" && !validFormat(s.Format):
		return specErr("format %q: want parquet, csv or ndjson", s.Format)
	case s.LinkWith != "" && (!strings.HasPrefix(s.LinkWith, "ds_") || strings.ContainsAny(s.LinkWith, " \t/")):
		return specErr("link_with %q: want the id of an earlier dataset (ds_…, as medsec dataset list shows)", s.LinkWith)
	}
	return nil
}

func validFormat(f string) bool {
	return f == FormatParquet || f == FormatCSV || f == FormatNDJSON
}

// RowKind is Rows with its default.
func (s *Spec) RowKind() string {
	if s.Rows == "" {
		return RowsRecord
	}
	return s.Rows
}

func (s *Spec) checkCohort() error {
	for _, c := range s.Cohort.Classes {
		if !slices.Contains(researchClasses, c) {
			return specErr("cohort class %q: want one of %s", c, strings.Join(researchClasses, ", "))
		}
	}
	if s.RowKind() == RowsRecord && len(s.Cohort.Classes) == 0 {
		return specErr("rows: record needs cohort classes (the records that become rows)")
	}
	if len(s.Cohort.Codes) > 0 && len(s.Cohort.Classes) == 0 {
		return specErr("cohort codes need cohort classes to look for them in")
	}
	from, to, err := s.Cohort.Window()
	if err != nil {
		return err
	}
	if !to.IsZero() && !to.After(from) {
		return specErr("cohort to (%s) must be after from (%s)", s.Cohort.To, s.Cohort.From)
	}
	return nil
}

// Window returns the cohort's dates as times (zero when open).
func (c Cohort) Window() (from, to time.Time, err error) {
	parse := func(name, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, specErr("cohort %s %q: write a date as YYYY-MM-DD", name, v)
		}
		return t, nil
	}
	if from, err = parse("from", c.From); err != nil {
		return
	}
	to, err = parse("to", c.To)
	return
}

func (s *Spec) checkFields() error {
	if len(s.Fields) == 0 {
		return specErr("no fields: name the columns of the dataset")
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if strings.TrimSpace(f.Name) == "" || f.Name != strings.TrimSpace(f.Name) || len(f.Name) > 64 || strings.ContainsAny(f.Name, ",\"\n\r") {
			return specErr("field name %q: 1 to 64 characters, no commas, quotes or line breaks", f.Name)
		}
		if seen[f.Name] {
			return specErr("field %q is named twice", f.Name)
		}
		seen[f.Name] = true
		if err := s.checkSource(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spec) checkSource(f Field) error {
	kind, rest, _ := strings.Cut(f.From, ".")
	ok := false
	switch kind {
	case "patient":
		ok = slices.Contains(patientSources, rest)
	case "record":
		if s.RowKind() == RowsPatient && len(s.Cohort.Classes) == 0 {
			return specErr("field %q: %s needs cohort classes (with rows: patient it is the patient's latest record)", f.Name, f.From)
		}
		p, isPayload := strings.CutPrefix(rest, "payload.")
		ok = slices.Contains(recordSources, rest) || (isPayload && validPath(p))
	case "count":
		if s.RowKind() != RowsPatient {
			return specErr("field %q: %s counts records per patient and needs rows: patient", f.Name, f.From)
		}
		ok = slices.Contains(s.Cohort.Classes, rest)
	}
	if !ok {
		return specErr("field %q: unknown source %q (see patient.*, record.*, record.payload.PATH, count.CLASS of a cohort class)", f.Name, f.From)
	}
	return nil
}

func validPath(p string) bool {
	if p == "" || len(p) > 200 {
		return false
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return false
		}
	}
	return true
}

func (s *Spec) checkFreeText() error {
	ft := s.FreeText
	if ft == nil {
		for _, f := range s.Fields {
			if f.From == "record.text" {
				return specErr("field %q holds free text (record.text): list it under free_text columns so it is redacted", f.Name)
			}
		}
		return nil
	}
	if ft.Mode != "" && ft.Mode != TextSurrogates && ft.Mode != TextTags {
		return specErr("free_text mode %q: want surrogates or tags", ft.Mode)
	}
	if !(ft.MinConfidence >= 0 && ft.MinConfidence <= 1) {
		return specErr("free_text min_confidence must be from 0 to 1")
	}
	for _, c := range ft.Columns {
		if s.field(c) == nil {
			return specErr("free_text column %q is not a field of the dataset", c)
		}
	}
	for _, f := range s.Fields {
		if f.From == "record.text" && !slices.Contains(ft.Columns, f.Name) {
			return specErr("field %q holds free text (record.text): list it under free_text columns so it is redacted", f.Name)
		}
	}
	return nil
}

func (s *Spec) field(name string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// checkRoles checks the de-identification against the fields: every field
// has one role (tabular's own check), free text is only redacted, and
// direct identifiers are only dropped or pseudonymized.
func (s *Spec) checkRoles() error {
	d := s.deidSpec()
	if err := d.Validate(&tabular.Table{Columns: s.columns()}); err != nil {
		return fmt.Errorf("dataset spec deid: %w (%w)", err, ErrSpec)
	}
	for _, f := range s.Fields {
		if !slices.Contains(directIdentifiers, f.From) {
			continue
		}
		if !slices.Contains(d.Drop, f.Name) && !slices.Contains(d.Pseudonymize, f.Name) {
			return specErr("field %q is a direct identifier (%s): drop or pseudonymize it", f.Name, f.From)
		}
	}
	for _, c := range s.textColumns() {
		if slices.Contains(s.Deid.Keep, c) || slices.Contains(s.Deid.Drop, c) || slices.Contains(s.Deid.Pseudonymize, c) || s.Deid.Sensitive == c {
			return specErr("free-text column %q has a role in deid too; free text is kept as redacted, give it no other role", c)
		}
	}
	return nil
}

func (s *Spec) columns() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

func (s *Spec) textColumns() []string {
	if s.FreeText == nil {
		return nil
	}
	return s.FreeText.Columns
}

// deidSpec is the tabular spec the table goes through: free-text columns
// (already redacted) kept, the risk limit defaulted.
func (s *Spec) deidSpec() tabular.Spec {
	d := s.Deid
	d.Keep = append(slices.Clone(d.Keep), s.textColumns()...)
	if d.MaxRisk == 0 {
		d.MaxRisk = DefaultMaxRisk
	}
	return d
}

// Classes are the record classes read besides demographics.
func (s *Spec) Classes() []string {
	out := slices.Clone(s.Cohort.Classes)
	slices.Sort(out)
	return slices.Compact(out)
}

// query is the door's question for the spec.
func (s *Spec) query(reason string) records.ResearchQuery {
	from, to, _ := s.Cohort.Window()
	return records.ResearchQuery{Departments: s.Cohort.Departments, Classes: s.Classes(), Codes: s.Cohort.Codes,
		From: from, To: to, Reason: reason}
}
