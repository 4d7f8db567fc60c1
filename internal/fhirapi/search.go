package fhirapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/medsec/medsec/internal/records"
)

// Search by patient, code and date. Parameters the API does not know are
// refused (400), not ignored, so a typo or an injection attempt never
// widens a search.

const maxCount = 1000

// searchParams are the parsed common parameters.
type searchParams struct {
	patient  string
	code     string
	from, to time.Time
	count    int
}

// parseSearch reads the query against the parameters allowed.
func parseSearch(q url.Values, allowed ...string) (searchParams, error) {
	var p searchParams
	for name, vals := range q {
		if !validCode(name, allowed...) {
			return p, badRequest("unknown search parameter %q; this search takes %s", truncate(name, 40), strings.Join(allowed, ", "))
		}
		if name != "date" && len(vals) > 1 {
			return p, badRequest("search parameter %s is given more than once", name)
		}
	}
	var err error
	if p.patient, err = patientParam(q); err != nil {
		return p, err
	}
	if c := q.Get("code"); c != "" {
		p.code = tokenCode(c)
	}
	for _, d := range q["date"] {
		if err := p.addDate(d); err != nil {
			return p, err
		}
	}
	p.count, err = countParam(q.Get("_count"))
	return p, err
}

func patientParam(q url.Values) (string, error) {
	v := q.Get("patient")
	if s := q.Get("subject"); s != "" {
		var ok bool
		if v, ok = strings.CutPrefix(s, "Patient/"); !ok {
			return "", badRequest("subject must be Patient/<id>")
		}
	}
	if v == "" {
		return "", nil
	}
	v = strings.TrimPrefix(v, "Patient/")
	return internalID(v, "Patient")
}

// tokenCode takes the code of a token parameter (system|code or code).
func tokenCode(v string) string {
	if i := strings.LastIndexByte(v, '|'); i >= 0 {
		return v[i+1:]
	}
	return v
}

func countParam(v string) (int, error) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxCount {
		return 0, badRequest("_count must be a number from 1 to %d", maxCount)
	}
	return n, nil
}

// addDate narrows [from, to) by one date parameter: a FHIR prefix (eq, ge,
// gt, le, lt; none means eq) and a date of any precision.
func (p *searchParams) addDate(v string) error {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	start, end, err := dateRange(v)
	if err != nil {
		return badRequest("date %q: %s", truncate(v, 40), err.Error())
	}
	switch prefix {
	case "eq":
		p.narrow(start, end)
	case "ge":
		p.narrow(start, time.Time{})
	case "gt":
		p.narrow(end, time.Time{})
	case "lt":
		p.narrow(time.Time{}, start)
	case "le":
		p.narrow(time.Time{}, end)
	default:
		return badRequest("date prefix %q is not one of eq, ge, gt, le, lt", truncate(prefix, 4))
	}
	return nil
}

func (p *searchParams) narrow(from, to time.Time) {
	if !from.IsZero() && from.After(p.from) {
		p.from = from
	}
	if !to.IsZero() && (p.to.IsZero() || to.Before(p.to)) {
		p.to = to
	}
}

// dateRange is the instant range a FHIR date or dateTime covers.
func dateRange(v string) (time.Time, time.Time, error) {
	layouts := []struct {
		layout string
		step   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Second) }},
	}
	for _, l := range layouts {
		if t, err := time.Parse(l.layout, v); err == nil && len(v) >= 4 {
			return t, l.step(t), nil
		}
	}
	return time.Time{}, time.Time{}, fmt.Errorf("not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 date-time)")
}

// parseDateTime reads a FHIR date or dateTime as the instant it starts.
func parseDateTime(v string) (time.Time, error) {
	t, _, err := dateRange(v)
	return t, err
}

func (a *API) searchRecords(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		if c.isPatient() {
			a.fail(w, r, c, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "the patient portal shows the access history and consents only"})
			return
		}
		p, err := parseSearch(r.URL.Query(), "patient", "subject", "code", "date", "_count")
		if err == nil && p.patient == "" {
			err = badRequest("a %s search names the patient (patient=<id>)", k.name)
		}
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		recs, err := a.h.Door.Records(r.Context(), c.req, p.patient, records.Filter{Class: k.class, Code: p.code, From: p.from, To: p.to, Limit: p.count})
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		entries := make([]json.RawMessage, 0, len(recs))
		for _, rec := range recs {
			b, err := render(k, rec)
			if err != nil {
				a.fail(w, r, c, err)
				return
			}
			entries = append(entries, b)
		}
		writeBundle(w, k.name, entries)
	}
}

// bundle is a FHIR searchset Bundle.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        int           `json:"total"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

func writeBundle(w http.ResponseWriter, resourceType string, resources []json.RawMessage) {
	b := bundle{ResourceType: "Bundle", Type: "searchset", Total: len(resources)}
	for _, res := range resources {
		e := bundleEntry{Resource: res}
		var idOnly struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(res, &idOnly) == nil && idOnly.ID != "" {
			e.FullURL = resourceType + "/" + idOnly.ID
		}
		e.Search.Mode = "match"
		b.Entry = append(b.Entry, e)
	}
	writeJSON(w, http.StatusOK, b)
}

// storeEncounter stores an Encounter; one in progress starts the care
// relationship it names (department, ward, attending, care team), one
// finished ends the active encounter.
func (a *API) storeEncounter(r *http.Request, c *caller, patient string, in recordIn, rec records.Record) (string, error) {
	switch in.status {
	case "in-progress", "arrived", "triaged":
		adm, err := admissionOf(in.enc)
		if err != nil {
			return "", err
		}
		adm.Code, adm.Payload = rec.Code, rec.Payload
		return a.h.Door.Admit(r.Context(), c.req, patient, adm)
	case "finished":
		ids, err := a.h.Door.AddRecords(r.Context(), c.req, patient, []records.Record{rec})
		if err != nil {
			return "", err
		}
		return ids[0], a.h.Door.Discharge(r.Context(), c.req, patient)
	}
	ids, err := a.h.Door.AddRecords(r.Context(), c.req, patient, []records.Record{rec})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// admissionOf reads the care relationship of an Encounter: the department
// from serviceProvider (Organization/<department> or its display), the
// ward from the first location, the attending from the participant of type
// ATND and the care team from the other participants (Practitioner/<staff
// id>).
func admissionOf(e *fhir.Encounter) (records.Admission, error) {
	var adm records.Admission
	adm.Department = refName(e.ServiceProvider, "Organization/")
	if adm.Department == "" {
		return adm, unprocessable("an Encounter in progress names the department in serviceProvider (Organization/<department>)")
	}
	if len(e.Location) > 0 {
		adm.Ward = refName(&e.Location[0].Location, "Location/")
	}
	for _, p := range e.Participant {
		staff := staffID(refName(p.Individual, "Practitioner/"))
		if staff == "" {
			continue
		}
		if participantType(p) == "ATND" {
			adm.Attending = staff
		}
		adm.CareTeam = append(adm.CareTeam, staff)
	}
	return adm, nil
}

func refName(ref *fhir.Reference, prefix string) string {
	if ref == nil {
		return ""
	}
	if ref.Reference != nil {
		if v, ok := strings.CutPrefix(*ref.Reference, prefix); ok {
			return v
		}
	}
	if ref.Display != nil {
		return *ref.Display
	}
	return ""
}

func participantType(p fhir.EncounterParticipant) string {
	for _, t := range p.Type {
		if c := firstCode(&t); c != "" {
			return c
		}
	}
	return ""
}

// staffID turns a Practitioner id back into a staff id.
func staffID(v string) string {
	if fhirIDPattern.MatchString(v) {
		return strings.Replace(v, "-", "_", 1)
	}
	return v
}

// parseQuery parses a raw query string (the fuzz target's entry).
func parseQuery(q string) (url.Values, error) { return url.ParseQuery(q) }
