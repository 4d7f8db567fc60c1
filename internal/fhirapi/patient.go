package fhirapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/medsec/medsec/internal/records"
)

// Identifier systems and extensions medsec uses on Patient.
const (
	SystemMRN        = "urn:medsec:id:mrn"
	SystemRRN        = "urn:medsec:id:rrn" // Korean resident registration number
	SystemLabel      = "urn:medsec:label"  // sensitivity labels in meta.security
	ExtDepartment    = "urn:medsec:department"
	ExtWard          = "urn:medsec:ward"
	ExtStaffMember   = "urn:medsec:staff-member"
	practitionerPath = "Practitioner/"
)

// patientOut is the FHIR Patient the API returns.
type patientOut struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	Meta         *metaOut        `json:"meta,omitempty"`
	Extension    []extensionOut  `json:"extension,omitempty"`
	Identifier   []identifierOut `json:"identifier,omitempty"`
	Name         []nameOut       `json:"name,omitempty"`
	Telecom      []telecomOut    `json:"telecom,omitempty"`
	Gender       string          `json:"gender,omitempty"`
	BirthDate    string          `json:"birthDate,omitempty"`
	Address      []addressOut    `json:"address,omitempty"`
	GP           []referenceOut  `json:"generalPractitioner,omitempty"`
}

type metaOut struct {
	LastUpdated string      `json:"lastUpdated,omitempty"`
	Security    []codingOut `json:"security,omitempty"`
}

type codingOut struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type extensionOut struct {
	URL          string `json:"url"`
	ValueString  string `json:"valueString,omitempty"`
	ValueBoolean *bool  `json:"valueBoolean,omitempty"`
}

type identifierOut struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type nameOut struct {
	Text   string `json:"text"`
	Family string `json:"family,omitempty"`
}

type telecomOut struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type addressOut struct {
	Text string `json:"text"`
}

type referenceOut struct {
	Reference string `json:"reference"`
}

func patientResource(p records.Patient) patientOut {
	out := patientOut{ResourceType: "Patient", ID: fhirID(p.ID), Gender: p.Sex, BirthDate: p.BirthDate,
		Meta: &metaOut{LastUpdated: p.Created.UTC().Format(time.RFC3339Nano)}}
	for _, l := range p.Labels {
		out.Meta.Security = append(out.Meta.Security, codingOut{System: SystemLabel, Code: l})
	}
	if p.Department != "" {
		out.Extension = append(out.Extension, extensionOut{URL: ExtDepartment, ValueString: p.Department})
	}
	if p.Ward != "" {
		out.Extension = append(out.Extension, extensionOut{URL: ExtWard, ValueString: p.Ward})
	}
	if p.StaffMember {
		t := true
		out.Extension = append(out.Extension, extensionOut{URL: ExtStaffMember, ValueBoolean: &t})
	}
	for _, id := range []identifierOut{{SystemMRN, p.MRN}, {SystemRRN, p.RRN}} {
		if id.Value != "" {
			out.Identifier = append(out.Identifier, id)
		}
	}
	if p.Name != "" {
		out.Name = []nameOut{{Text: p.Name, Family: records.SurnameOf(p.Name)}}
	}
	if p.Phone != "" {
		out.Telecom = []telecomOut{{System: "phone", Value: p.Phone}}
	}
	if p.Address != "" {
		out.Address = []addressOut{{Text: p.Address}}
	}
	if p.Attending != "" {
		out.GP = []referenceOut{{Reference: practitionerPath + fhirID(p.Attending)}}
	}
	return out
}

func (a *API) readPatient(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if c.isPatient() {
		a.fail(w, r, c, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "the patient portal shows the access history and consents only"})
		return
	}
	id, err := internalID(chi.URLParam(r, "id"), "Patient")
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	p, err := a.h.Door.Patient(r.Context(), c.req, id)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, patientResource(p))
}

// searchPatients finds patients by an exact identifier (identifier=
// system|value for MRN or RRN, or phone=) through the blind index, then
// reads each through the door.
func (a *API) searchPatients(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	kind, value, err := patientSearch(r)
	if err == nil && c.isPatient() {
		err = &apiError{status: http.StatusForbidden, code: "forbidden", msg: "the patient portal does not search patients"}
	}
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	ids, err := a.h.Door.FindPatient(r.Context(), c.req, kind, value)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	var out []json.RawMessage
	for _, id := range ids {
		p, err := a.h.Door.Patient(r.Context(), c.req, id)
		if err != nil {
			a.fail(w, r, c, err)
			return
		}
		b, _ := json.Marshal(patientResource(p))
		out = append(out, b)
	}
	writeBundle(w, "Patient", out)
}

func patientSearch(r *http.Request) (kind, value string, err error) {
	q := r.URL.Query()
	for name, vals := range q {
		if name != "identifier" && name != "phone" {
			return "", "", badRequest("unknown search parameter %q; patients are found by identifier (%s|… or %s|…) or phone", truncate(name, 40), SystemMRN, SystemRRN)
		}
		if len(vals) != 1 || len(q) != 1 {
			return "", "", badRequest("search patients by one identifier or one phone number")
		}
	}
	if v := q.Get("phone"); v != "" {
		return "phone", v, nil
	}
	sys, v, ok := strings.Cut(q.Get("identifier"), "|")
	switch {
	case !ok || v == "":
		return "", "", badRequest("identifier must be system|value")
	case sys == SystemMRN:
		return "mrn", v, nil
	case sys == SystemRRN:
		return "rrn", v, nil
	}
	return "", "", badRequest("identifier system %q is not searchable; use %s or %s", truncate(sys, 60), SystemMRN, SystemRRN)
}

// createPatient registers a patient (the registration desk, purpose TREAT).
func (a *API) createPatient(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	in, err := a.patientIn(r, c)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	p, err := a.h.Door.RegisterPatient(r.Context(), c.req, in)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	w.Header().Set("Location", "Patient/"+fhirID(p.ID))
	writeJSON(w, http.StatusCreated, patientResource(p))
}

func (a *API) patientIn(r *http.Request, c *caller) (records.Patient, error) {
	if c.isPatient() {
		return records.Patient{}, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "patients are registered at the registration desk"}
	}
	body, err := readBody(r)
	if err != nil {
		return records.Patient{}, err
	}
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.Patient
	}
	if err := decodeStrict(body, &in); err != nil {
		return records.Patient{}, err
	}
	if in.ResourceType != "Patient" {
		return records.Patient{}, unprocessable("the body must be a Patient (resourceType \"Patient\")")
	}
	return patientOf(&in.Patient)
}

// patientOf maps a FHIR Patient onto the door's registration.
func patientOf(in *fhir.Patient) (records.Patient, error) {
	var p records.Patient
	if len(in.Name) == 0 {
		return p, unprocessable("Patient.name is required")
	}
	p.Name = humanName(in.Name[0])
	if in.Gender != nil {
		p.Sex = in.Gender.Code()
	}
	if in.BirthDate != nil {
		if _, err := time.Parse("2006-01-02", *in.BirthDate); err != nil {
			return p, unprocessable("Patient.birthDate must be YYYY-MM-DD")
		}
		p.BirthDate = *in.BirthDate
	}
	for _, id := range in.Identifier {
		if err := setIdentifier(&p, id); err != nil {
			return p, err
		}
	}
	for _, t := range in.Telecom {
		if t.Value != nil && t.System != nil && t.System.Code() == "phone" {
			p.Phone = *t.Value
		}
	}
	if len(in.Address) > 0 {
		p.Address = addressText(in.Address[0])
	}
	for _, gp := range in.GeneralPractitioner {
		p.Attending = staffID(refName(&gp, practitionerPath))
	}
	if in.Meta != nil {
		for _, s := range in.Meta.Security {
			if s.System != nil && *s.System == SystemLabel && s.Code != nil {
				p.Labels = append(p.Labels, *s.Code)
			}
		}
	}
	return p, patientExtensions(&p, in.Extension)
}

func setIdentifier(p *records.Patient, id fhir.Identifier) error {
	if id.System == nil || id.Value == nil {
		return unprocessable("every Patient.identifier needs a system and a value")
	}
	switch *id.System {
	case SystemMRN:
		p.MRN = *id.Value
	case SystemRRN:
		p.RRN = *id.Value
	default:
		return unprocessable("identifier system %q is not kept; use %s or %s", truncate(*id.System, 60), SystemMRN, SystemRRN)
	}
	return nil
}

func humanName(n fhir.HumanName) string {
	if n.Text != nil && *n.Text != "" {
		return *n.Text
	}
	parts := append([]string{}, n.Given...)
	if n.Family != nil {
		parts = append(parts, *n.Family)
	}
	return strings.Join(parts, " ")
}

func addressText(ad fhir.Address) string {
	if ad.Text != nil {
		return *ad.Text
	}
	parts := append([]string{}, ad.Line...)
	for _, s := range []*string{ad.City, ad.PostalCode, ad.Country} {
		if s != nil {
			parts = append(parts, *s)
		}
	}
	return strings.Join(parts, ", ")
}

func patientExtensions(p *records.Patient, exts []fhir.Extension) error {
	for _, e := range exts {
		switch {
		case e.Url == ExtDepartment && e.ValueString != nil:
			p.Department = *e.ValueString
		case e.Url == ExtWard && e.ValueString != nil:
			p.Ward = *e.ValueString
		case e.Url == ExtStaffMember && e.ValueBoolean != nil:
			p.StaffMember = *e.ValueBoolean
		default:
			return unprocessable("extension %q is not one medsec keeps", truncate(e.Url, 60))
		}
	}
	return nil
}

// issuePortalAccess gives the patient a portal token (the registration
// desk): POST Patient/{id}/$portal-access?days=N.
func (a *API) issuePortalAccess(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	id, err := internalID(chi.URLParam(r, "id"), "Patient")
	if err != nil || c.isPatient() {
		a.fail(w, r, c, notFound("no such patient"))
		return
	}
	token, expires, err := a.h.Door.IssuePortalAccess(r.Context(), c.req, id, 30*24*time.Hour)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"resourceType": "Parameters", "parameter": []map[string]string{
		{"name": "token", "valueString": token}, {"name": "expires", "valueInstant": expires.UTC().Format(time.RFC3339)}}})
}
