package fhirapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/medsec/medsec/internal/records"
)

// kind is a FHIR resource type kept as clinical records of one class.
type kind struct {
	name     string
	class    string
	required []string
	// parse decodes and checks a body strictly and says what to store.
	parse func(body []byte) (recordIn, error)
}

// recordIn is a checked resource on its way to the door.
type recordIn struct {
	subject   *fhir.Reference
	code      string
	effective *string
	// encounter status, for Encounter only
	status string
	enc    *fhir.Encounter
}

var kinds = []kind{
	{"Observation", records.ClassObservation, []string{"status", "code", "subject"}, parseObservation},
	{"Encounter", records.ClassEncounter, []string{"status", "class", "subject"}, parseEncounter},
	{"ServiceRequest", records.ClassOrder, []string{"status", "intent", "subject"}, parseServiceRequest},
	{"MedicationRequest", records.ClassMedication, []string{"status", "intent", "subject"}, parseMedicationRequest},
	{"DocumentReference", records.ClassNote, []string{"status", "content", "subject"}, parseDocumentReference},
}

func kindOf(name string) kind {
	for _, k := range kinds {
		if k.name == name {
			return k
		}
	}
	return kind{}
}

func parseObservation(body []byte) (recordIn, error) {
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.Observation
	}
	if err := decodeStrict(body, &in); err != nil {
		return recordIn{}, err
	}
	r := recordIn{subject: in.Subject, code: firstCode(&in.Code), effective: in.EffectiveDateTime}
	if r.code == "" {
		return r, unprocessable("Observation.code needs a coding with a code (LOINC or IEEE 11073 MDC)")
	}
	switch {
	case r.effective != nil:
	case in.EffectiveInstant != nil:
		r.effective = in.EffectiveInstant
	case in.EffectivePeriod != nil && in.EffectivePeriod.Start != nil:
		r.effective = in.EffectivePeriod.Start
	case in.Issued != nil:
		r.effective = in.Issued
	}
	return r, nil
}

func parseEncounter(body []byte) (recordIn, error) {
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.Encounter
	}
	if err := decodeStrict(body, &in); err != nil {
		return recordIn{}, err
	}
	r := recordIn{subject: in.Subject, status: in.Status.Code(), enc: &in.Encounter}
	if in.Class.Code != nil {
		r.code = *in.Class.Code
	}
	if in.Period != nil {
		r.effective = in.Period.Start
	}
	return r, nil
}

func parseServiceRequest(body []byte) (recordIn, error) {
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.ServiceRequest
	}
	if err := decodeStrict(body, &in); err != nil {
		return recordIn{}, err
	}
	return recordIn{subject: &in.Subject, code: firstCode(in.Code), effective: in.AuthoredOn}, nil
}

func parseMedicationRequest(body []byte) (recordIn, error) {
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.MedicationRequest
	}
	if err := decodeStrict(body, &in); err != nil {
		return recordIn{}, err
	}
	if !validCode(in.Status, "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown") {
		return recordIn{}, unprocessable("MedicationRequest.status %q is not a medicationrequest-status code", truncate(in.Status, 40))
	}
	if !validCode(in.Intent, "proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option") {
		return recordIn{}, unprocessable("MedicationRequest.intent %q is not a medicationrequest-intent code", truncate(in.Intent, 40))
	}
	code := firstCode(&in.MedicationCodeableConcept)
	if code == "" && in.MedicationReference.Reference == nil {
		return recordIn{}, unprocessable("MedicationRequest needs medicationCodeableConcept (with a code) or medicationReference")
	}
	return recordIn{subject: &in.Subject, code: code, effective: in.AuthoredOn}, nil
}

func parseDocumentReference(body []byte) (recordIn, error) {
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.DocumentReference
	}
	if err := decodeStrict(body, &in); err != nil {
		return recordIn{}, err
	}
	if len(in.Content) == 0 {
		return recordIn{}, unprocessable("DocumentReference.content needs at least one attachment")
	}
	return recordIn{subject: in.Subject, code: firstCode(in.Type), effective: in.Date}, nil
}

func validCode(s string, codes ...string) bool {
	for _, c := range codes {
		if s == c {
			return true
		}
	}
	return false
}

func firstCode(cc *fhir.CodeableConcept) string {
	if cc == nil {
		return ""
	}
	for _, c := range cc.Coding {
		if c.Code != nil && *c.Code != "" {
			return *c.Code
		}
	}
	return ""
}

// FHIR ids allow [A-Za-z0-9\-\.]{1,64}; medsec's ids have one underscore
// after a prefix ("pt_…", "rec_…"), shown as a hyphen.
var fhirIDPattern = regexp.MustCompile(`^[a-z]{2,4}-[a-z2-7]{1,40}$`)

func fhirID(id string) string { return strings.Replace(id, "_", "-", 1) }

// internalID checks a FHIR id from a path or reference and returns the
// door's id; anything else (an injection attempt included) is a 404.
func internalID(id, resource string) (string, error) {
	if !fhirIDPattern.MatchString(id) {
		return "", notFound("no %s has the id %q", resource, truncate(id, 70))
	}
	return strings.Replace(id, "-", "_", 1), nil
}

// patientRef reads "Patient/<id>".
func patientRef(ref *fhir.Reference, field string) (string, error) {
	if ref == nil || ref.Reference == nil {
		return "", unprocessable("%s must reference the patient (\"Patient/<id>\")", field)
	}
	id, ok := strings.CutPrefix(*ref.Reference, "Patient/")
	if !ok {
		return "", unprocessable("%s must reference a Patient, not %q", field, truncate(*ref.Reference, 70))
	}
	pid, err := internalID(id, "Patient")
	if err != nil {
		return "", unprocessable("%s references an unknown patient", field)
	}
	return pid, nil
}

// checkResource refuses a body whose resourceType is wrong or lacks a
// required element (the models cannot tell a missing code from its zero).
func checkResource(body []byte, k kind) (map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, badRequest("the body must be a JSON object")
	}
	var rt string
	if err := json.Unmarshal(top["resourceType"], &rt); err != nil || rt != k.name {
		return nil, unprocessable("the body must be a %s (resourceType %q)", k.name, k.name)
	}
	for _, f := range k.required {
		if v, ok := top[f]; !ok || string(v) == "null" {
			return nil, unprocessable("%s.%s is required", k.name, f)
		}
	}
	return top, nil
}

// storedForm is what the door seals: the resource as sent (compacted)
// without resourceType, id and meta, which the server owns.
func storedForm(top map[string]json.RawMessage) ([]byte, error) {
	delete(top, "resourceType")
	delete(top, "id")
	delete(top, "meta")
	return json.Marshal(top)
}

// render writes a stored record as its FHIR resource. The usual stored form
// (no resourceType) is spliced without decoding: this is the hot read path.
func render(k kind, rec records.Record) ([]byte, error) {
	head := fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"lastUpdated":%q}`, k.name, fhirID(rec.ID), rec.Created.UTC().Format(time.RFC3339Nano))
	p := bytes.TrimSpace(rec.Payload)
	if len(p) >= 2 && p[0] == '{' && !bytes.Contains(p, []byte(`"resourceType"`)) {
		out := make([]byte, 0, len(head)+len(p)+1)
		out = append(out, head...)
		if len(p) > 2 {
			out = append(out, ',')
		}
		return append(out, p[1:]...), nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(p, &top); err != nil {
		return nil, fmt.Errorf("stored %s %s is not JSON: %w", k.name, rec.ID, err)
	}
	delete(top, "resourceType")
	delete(top, "id")
	delete(top, "meta")
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	return render(k, records.Record{ID: rec.ID, Created: rec.Created, Payload: rest})
}

func (a *API) readRecord(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		if c.isPatient() {
			a.fail(w, r, c, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "the patient portal shows the access history and consents; ask your care team for copies of your record"})
			return
		}
		id, err := internalID(chi.URLParam(r, "id"), k.name)
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		rec, err := a.h.Door.Record(r.Context(), c.req, id)
		if err == nil && rec.Class != k.class {
			err = notFound("no %s has the id %q", k.name, fhirID(id))
		}
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		out, err := render(k, rec)
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		writeRaw(w, http.StatusOK, out)
	}
}

func (a *API) createRecord(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		id, err := a.create(r, c, k)
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		rec, err := a.h.Door.Record(r.Context(), c.req, id)
		if err != nil {
			// Stored, but the writer may not read it back: say where it is.
			w.Header().Set("Location", k.name+"/"+fhirID(id))
			w.WriteHeader(http.StatusCreated)
			return
		}
		out, err := render(k, rec)
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		w.Header().Set("Location", k.name+"/"+fhirID(id))
		writeRaw(w, http.StatusCreated, out)
	}
}

// create checks the body and stores it through the door.
func (a *API) create(r *http.Request, c *caller, k kind) (string, error) {
	if c.isPatient() {
		return "", &apiError{status: http.StatusForbidden, code: "forbidden", msg: "patients do not write clinical records"}
	}
	body, err := readBody(r)
	if err != nil {
		return "", err
	}
	in, err := k.parse(body)
	if err != nil {
		return "", err
	}
	top, err := checkResource(body, k)
	if err != nil {
		return "", err
	}
	patient, err := patientRef(in.subject, k.name+".subject")
	if err != nil {
		return "", err
	}
	rec := records.Record{Class: k.class, Code: in.code, Source: "staff:" + c.staff.Username}
	if in.effective != nil {
		if rec.Effective, err = parseDateTime(*in.effective); err != nil {
			return "", unprocessable("%s: %s", k.name, err.Error())
		}
	}
	if rec.Payload, err = storedForm(top); err != nil {
		return "", err
	}
	if k.name == "Encounter" {
		return a.storeEncounter(r, c, patient, in, rec)
	}
	ids, err := a.h.Door.AddRecords(r.Context(), c.req, patient, []records.Record{rec})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}
