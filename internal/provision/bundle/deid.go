package bundle

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/records"
)

// droppedKeys are FHIR elements that identify people or carry free text;
// a de-identified resource loses them wherever they occur.
var droppedKeys = map[string]bool{
	"identifier": true, "text": true, "note": true, "name": true, "telecom": true, "address": true,
	"contact": true, "photo": true, "performer": true, "requester": true, "recorder": true, "asserter": true,
	"author": true, "contained": true, "encounter": true, "basedOn": true, "extension": true,
	"modifierExtension": true, "valueString": true, "comment": true, "description": true, "generalPractitioner": true,
	"managingOrganization": true, "link": true, "dosageInstruction": true, "patientInstruction": true,
}

// dateValue matches FHIR date and dateTime values with more than a year.
var dateValue = regexp.MustCompile(`^\d{4}-\d{2}(-\d{2})?(T.*)?$`)

// deidentified follows HIPAA Safe Harbor in spirit: a pseudonym of its own
// for the bundle, dates reduced to the year, ages over 89 not given,
// identifiers, names, contacts and free text removed. Records that are not
// FHIR resources (a note's text) are withheld.
func deidentified(x records.Extract, now time.Time) ([]Entry, int) {
	patURL := newURN()
	var out []Entry
	if x.Patient != nil {
		out = append(out, Entry{FullURL: patURL, Resource: deidPatient(x.Patient, now)})
	}
	withheld := 0
	for _, r := range x.Records {
		res, ok := fhirResource(r.Payload)
		if !ok {
			withheld++
			continue
		}
		scrubbed, _ := scrub(res, patURL).(map[string]any)
		if scrubbed == nil {
			withheld++
			continue
		}
		scrubbed["id"] = strings.TrimPrefix(newURN(), "urn:uuid:")
		scrubbed["subject"] = map[string]any{"reference": patURL}
		out = append(out, Entry{FullURL: newURN(), Resource: scrubbed})
	}
	return out, withheld
}

func deidPatient(p *records.Patient, now time.Time) map[string]any {
	res := map[string]any{"resourceType": "Patient", "id": strings.TrimPrefix(newURN(), "urn:uuid:")}
	setIf(res, "gender", gender(p.Sex), p.Sex != "")
	if year, ok := birthYear(p.BirthDate); ok && now.Year()-year <= 89 {
		res["birthDate"] = strconv.Itoa(year)
	}
	return res
}

func birthYear(date string) (int, bool) {
	if len(date) < 4 {
		return 0, false
	}
	y, err := strconv.Atoi(date[:4])
	return y, err == nil
}

// scrub returns a copy of v without identifying elements; nil means drop.
func scrub(v any, patURL string) any {
	switch t := v.(type) {
	case map[string]any:
		return scrubObject(t, patURL)
	case []any:
		out := make([]any, 0, len(t))
		for _, e := range t {
			if s := scrub(e, patURL); s != nil {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case string:
		if dateValue.MatchString(t) {
			return t[:4]
		}
		return t
	}
	return v
}

func scrubObject(m map[string]any, patURL string) any {
	if ref, ok := m["reference"].(string); ok {
		if strings.HasPrefix(ref, "Patient/") || ref == patURL {
			return map[string]any{"reference": patURL}
		}
		return nil
	}
	out := make(map[string]any, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if droppedKeys[k] {
			continue
		}
		if s := scrub(m[k], patURL); s != nil {
			out[k] = s
		}
	}
	return out
}

// aggregate counts the records by class and code: a MeasureReport of type
// summary, with the period reduced to years and nothing about the person.
func aggregate(x records.Extract, now time.Time) map[string]any {
	type key struct{ class, code string }
	counts := map[key]int{}
	perClass := map[string]int{}
	first, last := 0, 0
	for _, r := range x.Records {
		counts[key{r.Class, r.Code}]++
		perClass[r.Class]++
		y := r.Effective.UTC().Year()
		if first == 0 || y < first {
			first = y
		}
		last = max(last, y)
	}
	classes := make([]string, 0, len(perClass))
	for c := range perClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	groups := make([]any, 0, len(classes))
	for _, c := range classes {
		var strata []any
		codes := make([]string, 0)
		for k := range counts {
			if k.class == c {
				codes = append(codes, k.code)
			}
		}
		slices.Sort(codes)
		for _, code := range codes {
			strata = append(strata, map[string]any{"value": map[string]any{"text": code},
				"population": []any{map[string]any{"count": counts[key{c, code}]}}})
		}
		groups = append(groups, map[string]any{
			"code":       map[string]any{"coding": []any{map[string]any{"system": "urn:medsec:data-class", "code": c}}},
			"population": []any{map[string]any{"code": populationCode, "count": perClass[c]}},
			"stratifier": []any{map[string]any{"code": []any{map[string]any{"text": "code"}}, "stratum": strata}},
		})
	}
	if first == 0 {
		first, last = now.Year(), now.Year()
	}
	return map[string]any{
		"resourceType": "MeasureReport", "id": strings.TrimPrefix(newURN(), "urn:uuid:"),
		"status": "complete", "type": "summary", "measure": "urn:medsec:measure:record-counts",
		"date":   now.UTC().Format(time.RFC3339),
		"period": map[string]any{"start": strconv.Itoa(first), "end": strconv.Itoa(last)},
		"group":  groups,
	}
}

var populationCode = map[string]any{"coding": []any{map[string]any{
	"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": "initial-population"}}}
