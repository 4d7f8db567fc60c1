package phd

import (
	"encoding/json"
	"strconv"
	"time"
)

// Code systems and profiles of the FHIR rendering.
const (
	SystemMDC            = "urn:iso:std:iso:11073:10101"
	SystemLOINC          = "http://loinc.org"
	SystemUCUM           = "http://unitsofmeasure.org"
	SystemCategory       = "http://terminology.hl7.org/CodeSystem/observation-category"
	SystemPHDCategory    = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
	SystemInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	// SystemPrivateMDC carries medsec's private-partition codes (sleep
	// duration); they are not IEEE 11073-10101 codes and are not sent under
	// SystemMDC.
	SystemPrivateMDC = "urn:medsec:phd:private-mdc"
	// SystemReadingID is the identifier system of Reading.ID.
	SystemReadingID = "urn:medsec:phd:reading"

	ProfilePHDNumeric         = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation"
	ProfilePHDCompoundNumeric = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation"
)

// Observation is a FHIR R4 Observation, only the elements the PHD IG uses
// for numeric and compound numeric observations.
type Observation struct {
	ResourceType      string                 `json:"resourceType"`
	ID                string                 `json:"id,omitempty"`
	Meta              *Meta                  `json:"meta,omitempty"`
	Identifier        []Identifier           `json:"identifier,omitempty"`
	Status            string                 `json:"status"`
	Category          []CodeableConcept      `json:"category,omitempty"`
	Code              CodeableConcept        `json:"code"`
	Subject           *Reference             `json:"subject,omitempty"`
	EffectiveDateTime string                 `json:"effectiveDateTime,omitempty"`
	Performer         []Reference            `json:"performer,omitempty"`
	ValueQuantity     *Quantity              `json:"valueQuantity,omitempty"`
	Interpretation    []CodeableConcept      `json:"interpretation,omitempty"`
	Device            *Reference             `json:"device,omitempty"`
	Component         []ObservationComponent `json:"component,omitempty"`
}

// ObservationComponent is Observation.component.
type ObservationComponent struct {
	Code           CodeableConcept   `json:"code"`
	ValueQuantity  *Quantity         `json:"valueQuantity,omitempty"`
	Interpretation []CodeableConcept `json:"interpretation,omitempty"`
}

// Meta is Resource.meta.
type Meta struct {
	Profile []string `json:"profile,omitempty"`
}

// Identifier is a FHIR Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// Reference is a FHIR Reference.
type Reference struct {
	Reference string `json:"reference"`
}

// Quantity is a FHIR Quantity with a UCUM unit.
type Quantity struct {
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	System string  `json:"system,omitempty"`
	Code   string  `json:"code,omitempty"`
}

// RenderObservation renders a stored reading as the PHD IG does: the MDC
// code plus the LOINC vital-signs code, a UCUM valueQuantity, components
// for blood pressure, the device and the (pseudonymous) patient, and an
// HX/LX interpretation when a value lies outside physiological limits.
func RenderObservation(r Reading) (Observation, error) {
	kind, ok := LookupKind(r.Code)
	if !ok {
		return Observation{}, refuse(ReasonUnknownCode, "reading %s has code %d, not in the catalog", r.ID(), uint32(r.Code))
	}
	unit, ok := kind.Unit(r.Unit)
	if !ok {
		return Observation{}, refuse(ReasonUnitMismatch, "reading %s has unit %q, not allowed for %s", r.ID(), printable(r.Unit), kind.RefID)
	}
	patient := &Reference{Reference: "Patient/" + r.Patient}
	obs := Observation{
		ResourceType:      "Observation",
		ID:                r.ID(),
		Meta:              &Meta{Profile: profilesFor(kind)},
		Identifier:        []Identifier{{System: SystemReadingID, Value: r.ID()}},
		Status:            "final",
		Category:          categoriesFor(kind),
		Code:              conceptFor(kind, unit),
		Subject:           patient,
		EffectiveDateTime: fhirDateTime(r.Time),
		Performer:         []Reference{*patient},
		Device:            &Reference{Reference: "Device/" + r.DeviceID},
	}
	if kind.Compound() {
		return withComponents(obs, r, unit)
	}
	obs.ValueQuantity = quantity(r.Value, unit)
	obs.Interpretation = interpretation(r.Flag)
	return obs, nil
}

// RenderObservationJSON is RenderObservation encoded as FHIR JSON.
func RenderObservationJSON(r Reading) ([]byte, error) {
	obs, err := RenderObservation(r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(obs)
}

func withComponents(obs Observation, r Reading, unit Unit) (Observation, error) {
	for _, c := range r.Components {
		ck, ok := LookupKind(c.Code)
		if !ok {
			return Observation{}, refuse(ReasonUnknownCode, "reading %s has component %d, not in the catalog", r.ID(), uint32(c.Code))
		}
		obs.Component = append(obs.Component, ObservationComponent{
			Code:           conceptFor(ck, unit),
			ValueQuantity:  quantity(c.Value, unit),
			Interpretation: interpretation(c.Flag),
		})
	}
	obs.Interpretation = interpretation(r.Flag)
	return obs, nil
}

func profilesFor(k Kind) []string {
	var p []string
	switch {
	case k.Private:
		// The PHD profiles require an MDC code, which a private code is not.
	case k.Compound():
		p = append(p, ProfilePHDCompoundNumeric)
	default:
		p = append(p, ProfilePHDNumeric)
	}
	if k.VitalProfile != "" {
		p = append(p, k.VitalProfile)
	}
	return p
}

func categoriesFor(k Kind) []CodeableConcept {
	return []CodeableConcept{
		{Coding: []Coding{{System: SystemCategory, Code: k.Category}}},
		{Coding: []Coding{{System: SystemPHDCategory, Code: "phd-observation"}}},
	}
}

// conceptFor puts the MDC coding first (the PHD IG requires it) and the
// LOINC coding the vital-signs profiles require after it; code.text carries
// the MDC reference id as the IG recommends.
func conceptFor(k Kind, u Unit) CodeableConcept {
	code := strconv.FormatUint(uint64(k.Code), 10)
	mdc := Coding{System: SystemMDC, Code: code, Display: k.RefID}
	if k.Private {
		mdc.System = SystemPrivateMDC
	}
	cc := CodeableConcept{Coding: []Coding{mdc}, Text: k.RefID + ": " + k.Display}
	if loinc, display := k.LOINCFor(u); loinc != "" {
		cc.Coding = append(cc.Coding, Coding{System: SystemLOINC, Code: loinc, Display: display})
	}
	cc.Coding = append(cc.Coding, k.MoreLOINC...)
	return cc
}

func quantity(v float64, u Unit) *Quantity {
	return &Quantity{Value: v, Unit: u.Display, System: SystemUCUM, Code: u.UCUM}
}

func interpretation(f Flag) []CodeableConcept {
	var c Coding
	switch {
	case f&FlagAboveLimits != 0:
		c = Coding{System: SystemInterpretation, Code: "HX", Display: "above high threshold"}
	case f&FlagBelowLimits != 0:
		c = Coding{System: SystemInterpretation, Code: "LX", Display: "below low threshold"}
	default:
		return nil
	}
	return []CodeableConcept{{Coding: []Coding{c}, Text: "outside physiological limits: check the device or measure again"}}
}

// fhirDateTime writes a FHIR dateTime in UTC with milliseconds when present.
func fhirDateTime(t time.Time) string {
	t = t.UTC().Truncate(time.Millisecond)
	if t.Nanosecond() == 0 {
		return t.Format(time.RFC3339)
	}
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}
