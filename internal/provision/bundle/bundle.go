// Package bundle renders what the one door hands out (records.Extract) as a
// FHIR R4 Bundle, in one of three forms: identified (a referral, a
// prescription for the pharmacy, the patient's own copy), de-identified (a
// per-bundle pseudonym, dates to the year, identifiers, names and free text
// removed) or aggregated (counts by data class and code only).
//
// It serves the paper's locations 8, 10 and 11 (pharmacies, other hospitals,
// external agencies: "anonymous/non-identification functions are also
// required" for data sent outside) and 9 (a patient's copy of their own
// record). The de-identification here is deliberately simple and
// conservative; the full pipeline of internal/deid can replace it through
// provision.Config.Deidentify.
package bundle

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/records"
)

// Forms of the data in a bundle.
const (
	Identified   = "identified"
	Deidentified = "deidentified"
	Aggregated   = "aggregated"
)

// Forms lists the forms in order of decreasing detail.
var Forms = []string{Identified, Deidentified, Aggregated}

// ErrForm means the form asked for is not one of Forms.
var ErrForm = errors.New("unknown bundle form")

// Options shape a bundle.
type Options struct {
	ID   string // the bundle's id (the package id)
	Form string
	Now  time.Time
}

// Result is a rendered bundle.
type Result struct {
	JSON    []byte
	Entries int
	// Withheld counts records left out: free text and non-FHIR payloads
	// cannot be de-identified here.
	Withheld int
}

// Bundle is a FHIR R4 Bundle of type collection.
type Bundle struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id,omitempty"`
	Meta         *Meta   `json:"meta,omitempty"`
	Type         string  `json:"type"`
	Timestamp    string  `json:"timestamp,omitempty"`
	Entry        []Entry `json:"entry"`
}

// Meta carries the security label of a de-identified or aggregated bundle.
type Meta struct {
	Security []Coding `json:"security,omitempty"`
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// Entry is one resource of a bundle.
type Entry struct {
	FullURL  string         `json:"fullUrl"`
	Resource map[string]any `json:"resource"`
}

// Build renders x in the form asked for.
func Build(x records.Extract, opt Options) (Result, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	b := Bundle{ResourceType: "Bundle", ID: opt.ID, Type: "collection", Timestamp: opt.Now.UTC().Format(time.RFC3339)}
	var withheld int
	switch opt.Form {
	case Identified:
		b.Entry = identified(x)
	case Deidentified:
		b.Meta = &Meta{Security: []Coding{{System: obsValueSystem, Code: "PSEUDED", Display: "pseudonymized"}}}
		b.Entry, withheld = deidentified(x, opt.Now)
	case Aggregated:
		b.Meta = &Meta{Security: []Coding{{System: obsValueSystem, Code: "AGGRED", Display: "aggregated"}}}
		b.Entry = []Entry{{FullURL: newURN(), Resource: aggregate(x, opt.Now)}}
	default:
		return Result{}, fmt.Errorf("%w %q: use identified, deidentified or aggregated", ErrForm, opt.Form)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return Result{}, fmt.Errorf("encode bundle: %w", err)
	}
	return Result{JSON: raw, Entries: len(b.Entry), Withheld: withheld}, nil
}

const obsValueSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

// newURN makes a urn:uuid (version 4) for an entry's fullUrl.
func newURN() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return "urn:uuid:" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func identified(x records.Extract) []Entry {
	patURL := newURN()
	var out []Entry
	if x.Patient != nil {
		out = append(out, Entry{FullURL: patURL, Resource: patientResource(x.Patient)})
	}
	for _, r := range x.Records {
		res, ok := fhirResource(r.Payload)
		if !ok {
			res = documentReference(r)
		}
		res["id"] = r.ID
		res["subject"] = map[string]any{"reference": patURL}
		out = append(out, Entry{FullURL: newURN(), Resource: res})
	}
	return out
}

// fhirResource parses a payload that is a FHIR resource (a JSON object with
// a resourceType).
func fhirResource(payload []byte) (map[string]any, bool) {
	var m map[string]any
	if json.Unmarshal(payload, &m) != nil {
		return nil, false
	}
	if t, ok := m["resourceType"].(string); !ok || t == "" {
		return nil, false
	}
	return m, true
}

func patientResource(p *records.Patient) map[string]any {
	res := map[string]any{"resourceType": "Patient", "id": p.Pseudonym}
	var ids []any
	for _, id := range []struct{ system, value string }{{"urn:medsec:identifier:mrn", p.MRN}, {"urn:medsec:identifier:kr-rrn", p.RRN}} {
		if id.value != "" {
			ids = append(ids, map[string]any{"system": id.system, "value": id.value})
		}
	}
	setIf(res, "identifier", ids, len(ids) > 0)
	setIf(res, "name", []any{map[string]any{"text": p.Name}}, p.Name != "")
	setIf(res, "telecom", []any{map[string]any{"system": "phone", "value": p.Phone}}, p.Phone != "")
	setIf(res, "gender", gender(p.Sex), p.Sex != "")
	setIf(res, "birthDate", p.BirthDate, p.BirthDate != "")
	setIf(res, "address", []any{map[string]any{"text": p.Address}}, p.Address != "")
	return res
}

func setIf(m map[string]any, key string, v any, ok bool) {
	if ok {
		m[key] = v
	}
}

func gender(s string) string {
	switch s {
	case "male", "female", "other":
		return s
	}
	return "unknown"
}

// documentReference wraps a payload that is not a FHIR resource (a note's
// text) as a DocumentReference with the payload attached.
func documentReference(r records.Record) map[string]any {
	return map[string]any{
		"resourceType": "DocumentReference",
		"status":       "current",
		"type":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": r.Code}}},
		"category":     []any{map[string]any{"text": r.Class}},
		"date":         r.Effective.UTC().Format(time.RFC3339),
		"content":      []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain; charset=utf-8", "data": r.Payload}}},
	}
}
