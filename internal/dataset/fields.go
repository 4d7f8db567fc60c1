package dataset

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medsec/medsec/internal/records"
)

// sourceRow is one row before de-identification and where it came from.
// It holds PHI, so it only ever leaves memory sealed (a job unit).
type sourceRow struct {
	Cells   []string `json:"c"`
	Patient string   `json:"p"` // internal patient id
	Records []string `json:"r"` // source record ids
}

// rowsOf takes the spec's fields out of one patient's extract: a row per
// record, or one row for the patient (values as of their latest record,
// or of at when they have none).
func (s *Spec) rowsOf(x records.Extract, at time.Time) []sourceRow {
	if s.RowKind() == RowsPatient {
		ids := make([]string, len(x.Records))
		for i, r := range x.Records {
			ids[i] = r.ID
		}
		r := latest(x.Records)
		if r != nil {
			at = r.Effective
		}
		return []sourceRow{{Cells: s.cells(x, r, at), Patient: x.PatientID, Records: ids}}
	}
	out := make([]sourceRow, 0, len(x.Records))
	for i := range x.Records {
		r := &x.Records[i]
		out = append(out, sourceRow{Cells: s.cells(x, r, r.Effective), Patient: x.PatientID, Records: []string{r.ID}})
	}
	return out
}

// latest is the record with the latest effective time (nil for none).
func latest(recs []records.Record) *records.Record {
	var out *records.Record
	for i := range recs {
		if out == nil || recs[i].Effective.After(out.Effective) {
			out = &recs[i]
		}
	}
	return out
}

func (s *Spec) cells(x records.Extract, r *records.Record, at time.Time) []string {
	out := make([]string, len(s.Fields))
	var payload any
	parsed := false
	for i, f := range s.Fields {
		kind, rest, _ := strings.Cut(f.From, ".")
		switch kind {
		case "patient":
			out[i] = patientValue(x, rest, at)
		case "count":
			out[i] = strconv.Itoa(countClass(x.Records, rest))
		case "record":
			if p, ok := strings.CutPrefix(rest, "payload."); ok {
				if !parsed && r != nil {
					payload, parsed = decodePayload(r.Payload), true
				}
				out[i] = jsonValue(payload, p)
				continue
			}
			out[i] = recordValue(r, rest)
		}
	}
	return out
}

func patientValue(x records.Extract, name string, at time.Time) string {
	p := x.Patient
	if p == nil {
		return ""
	}
	switch name {
	case "id":
		return x.PatientID
	case "name":
		return p.Name
	case "rrn":
		return p.RRN
	case "mrn":
		return p.MRN
	case "phone":
		return p.Phone
	case "birth_date":
		return p.BirthDate
	case "birth_year":
		if len(p.BirthDate) >= 4 {
			return p.BirthDate[:4]
		}
	case "age":
		return ageAt(p.BirthDate, at)
	case "sex":
		return p.Sex
	case "address":
		return p.Address
	case "department":
		return p.Department
	case "ward":
		return p.Ward
	}
	return ""
}

// ageAt is the age in whole years on the day at, or "" when the birth date
// is unknown or after at.
func ageAt(birth string, at time.Time) string {
	b, err := time.Parse(time.DateOnly, birth)
	if err != nil {
		return ""
	}
	at = at.UTC()
	age := at.Year() - b.Year()
	if at.Month() < b.Month() || (at.Month() == b.Month() && at.Day() < b.Day()) {
		age--
	}
	if age < 0 {
		return ""
	}
	return strconv.Itoa(age)
}

func countClass(recs []records.Record, class string) int {
	n := 0
	for _, r := range recs {
		if r.Class == class {
			n++
		}
	}
	return n
}

func recordValue(r *records.Record, name string) string {
	if r == nil {
		return ""
	}
	switch name {
	case "id":
		return r.ID
	case "class":
		return r.Class
	case "code":
		return r.Code
	case "effective":
		return r.Effective.UTC().Format(time.DateOnly)
	case "effective_time":
		return r.Effective.UTC().Format(time.RFC3339)
	case "source":
		return r.Source
	case "text":
		if utf8.Valid(r.Payload) {
			return string(r.Payload)
		}
	}
	return ""
}

// decodePayload parses a JSON payload (FHIR resources, compact forms);
// anything else reads as no value.
func decodePayload(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return v
}

// jsonValue follows a dotted path (array positions as numbers) and
// returns a scalar as text; objects, arrays and missing values are "".
func jsonValue(v any, path string) string {
	for _, seg := range strings.Split(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return ""
			}
			v = node[i]
		default:
			return ""
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}
