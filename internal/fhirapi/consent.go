package fhirapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/records"
)

// SystemDataClass codes medsec's data classes in Consent.provision.class.
const SystemDataClass = "urn:medsec:data-class"

type consentOut struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Status       string         `json:"status"`
	Scope        conceptOut     `json:"scope"`
	Category     []conceptOut   `json:"category"`
	Patient      referenceOut   `json:"patient"`
	DateTime     string         `json:"dateTime"`
	Source       *displayRef    `json:"sourceReference,omitempty"`
	Provision    provisionOut   `json:"provision"`
	Extension    []extensionOut `json:"extension,omitempty"`
}

type conceptOut struct {
	Coding []codingOut `json:"coding"`
}

type displayRef struct {
	Display string `json:"display"`
}

type periodOut struct {
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
}

type provisionOut struct {
	Type    string      `json:"type"`
	Period  periodOut   `json:"period"`
	Purpose []codingOut `json:"purpose"`
	Class   []codingOut `json:"class,omitempty"`
}

// ExtWithdrawn marks a withdrawn consent with the time of withdrawal.
const ExtWithdrawn = "urn:medsec:consent-withdrawn"

func consentResource(c records.Consent, now time.Time) consentOut {
	out := consentOut{ResourceType: "Consent", ID: fhirID(c.ID), Status: "active",
		Scope:    conceptOut{Coding: []codingOut{{System: "http://terminology.hl7.org/CodeSystem/consentscope", Code: "patient-privacy"}}},
		Category: []conceptOut{{Coding: []codingOut{{System: "http://loinc.org", Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:  referenceOut{Reference: "Patient/" + fhirID(c.PatientID)},
		DateTime: c.RecordedAt.UTC().Format(time.RFC3339),
		Provision: provisionOut{Type: "deny", Period: periodOut{Start: c.From.UTC().Format(time.RFC3339)},
			Purpose: []codingOut{{System: access.PurposeSystem, Code: c.Purpose}}}}
	if !c.Active(now) {
		out.Status = "inactive"
	}
	if c.Permit {
		out.Provision.Type = "permit"
	}
	if end := c.Term().Until; !end.IsZero() {
		out.Provision.Period.End = end.UTC().Format(time.RFC3339)
	}
	for _, cl := range c.Classes {
		out.Provision.Class = append(out.Provision.Class, codingOut{System: SystemDataClass, Code: cl})
	}
	if c.FormRef != "" {
		out.Source = &displayRef{Display: c.FormRef}
	}
	if !c.WithdrawnAt.IsZero() {
		out.Extension = []extensionOut{{URL: ExtWithdrawn, ValueString: c.WithdrawnAt.UTC().Format(time.RFC3339)}}
	}
	return out
}

func (a *API) searchConsents(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	var cs []records.Consent
	var err error
	if c.isPatient() {
		if _, err = parseSearch(r.URL.Query(), "_count"); err == nil {
			cs, err = a.h.Door.PatientConsents(r.Context(), c.patient)
		}
	} else {
		var p searchParams
		p, err = parseSearch(r.URL.Query(), "patient", "_count")
		if err == nil && p.patient == "" {
			err = badRequest("a Consent search names the patient (patient=<id>)")
		}
		if err == nil {
			cs, err = a.h.Door.Consents(r.Context(), c.req, p.patient)
		}
	}
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	now := time.Now()
	out := make([]json.RawMessage, 0, len(cs))
	for _, cn := range cs {
		b, _ := json.Marshal(consentResource(cn, now))
		out = append(out, b)
	}
	writeBundle(w, "Consent", out)
}

// createConsent records a consent: one purpose, permit or deny, a period,
// optional data classes, the signed form in sourceReference.
func (a *API) createConsent(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	patient, cn, err := consentIn(r, c)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	got, err := a.h.Door.RecordConsent(r.Context(), c.req, patient, cn)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	w.Header().Set("Location", "Consent/"+fhirID(got.ID))
	writeJSON(w, http.StatusCreated, consentResource(got, time.Now()))
}

func consentIn(r *http.Request, c *caller) (string, records.Consent, error) {
	var cn records.Consent
	if c.isPatient() {
		return "", cn, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "consents are recorded with the signed form at the registration desk; the portal withdraws them"}
	}
	body, err := readBody(r)
	if err != nil {
		return "", cn, err
	}
	var in struct {
		ResourceType string `json:"resourceType"`
		fhir.Consent
	}
	if err := decodeStrict(body, &in); err != nil {
		return "", cn, err
	}
	if _, err := checkResource(body, kind{name: "Consent", required: []string{"status", "scope", "category", "patient", "provision"}}); err != nil {
		return "", cn, err
	}
	if in.Status.Code() != "active" {
		return "", cn, unprocessable("only an active consent is recorded (status %q)", in.Status.Code())
	}
	patient, err := patientRef(in.Patient, "Consent.patient")
	if err != nil {
		return "", cn, err
	}
	return patient, cn, provisionOf(in.Provision, &cn, in.SourceReference)
}

func provisionOf(p *fhir.ConsentProvision, cn *records.Consent, src *fhir.Reference) error {
	if p.Type == nil || len(p.Purpose) != 1 || p.Purpose[0].Code == nil {
		return unprocessable("Consent.provision needs a type (permit or deny) and exactly one purpose of use")
	}
	cn.Permit, cn.Purpose = p.Type.Code() == "permit", *p.Purpose[0].Code
	if p.Period != nil {
		var err error
		if p.Period.Start != nil {
			if cn.From, err = parseDateTime(*p.Period.Start); err != nil {
				return unprocessable("Consent.provision.period.start: %s", err.Error())
			}
		}
		if p.Period.End != nil {
			if cn.Until, err = parseDateTime(*p.Period.End); err != nil {
				return unprocessable("Consent.provision.period.end: %s", err.Error())
			}
		}
	}
	for _, cl := range p.Class {
		if cl.Code == nil || cl.System == nil || *cl.System != SystemDataClass {
			return unprocessable("Consent.provision.class codes use the system %s", SystemDataClass)
		}
		cn.Classes = append(cn.Classes, *cl.Code)
	}
	if src != nil && src.Display != nil {
		cn.FormRef = *src.Display
	}
	return nil
}

// parametersIn is a FHIR Parameters body with string values.
type parametersIn struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name        string  `json:"name"`
		ValueString *string `json:"valueString,omitempty"`
	} `json:"parameter"`
}

// withdrawConsent ends a consent now: POST Consent/{id}/$withdraw with a
// Parameters body holding "reason". Staff (decided) or the patient
// (their own consents only).
func (a *API) withdrawConsent(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	id, reason, err := withdrawIn(r)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	var got records.Consent
	if c.isPatient() {
		got, err = a.h.Door.PatientWithdrawConsent(r.Context(), c.patient, id, reason)
	} else {
		got, err = a.h.Door.WithdrawConsent(r.Context(), c.req, id, reason)
	}
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, consentResource(got, time.Now()))
}

func withdrawIn(r *http.Request) (string, string, error) {
	id, err := internalID(chi.URLParam(r, "id"), "Consent")
	if err != nil {
		return "", "", err
	}
	body, err := readBody(r)
	if err != nil {
		return "", "", err
	}
	var in parametersIn
	if err := decodeStrict(body, &in); err != nil {
		return "", "", err
	}
	if in.ResourceType != "Parameters" {
		return "", "", unprocessable("send a Parameters resource with a \"reason\" parameter")
	}
	for _, p := range in.Parameter {
		if p.Name == "reason" && p.ValueString != nil {
			return id, *p.ValueString, nil
		}
	}
	return "", "", unprocessable("say why in a \"reason\" parameter (valueString)")
}
