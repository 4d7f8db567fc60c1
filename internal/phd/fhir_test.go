package phd

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func reading(m Measurement, flag Flag) Reading {
	id, _ := ParseMessageID("00112233445566778899aabbccddeeff")
	m.Time = time.Date(2026, 3, 14, 7, 5, 9, 250e6, time.UTC)
	return Reading{Measurement: m, DeviceID: "bp-0001", Patient: "pt-7f3a9c", MessageID: id, Index: 3, Flag: flag}
}

func codings(cc fhir.CodeableConcept) map[string]string {
	out := map[string]string{}
	for _, c := range cc.Coding {
		if _, dup := out[*c.System]; !dup { // first coding of a system wins
			out[*c.System] = *c.Code
		}
	}
	return out
}

// decodeObservation parses the JSON with an independent FHIR R4 model, so
// a field we misspell or mistype fails here.
func decodeObservation(t *testing.T, r Reading) fhir.Observation {
	t.Helper()
	b, err := RenderObservationJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := fhir.UnmarshalObservation(b)
	if err != nil {
		t.Fatalf("not a FHIR R4 Observation: %v\n%s", err, b)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil || generic["resourceType"] != "Observation" {
		t.Fatalf("resourceType = %v (%v)", generic["resourceType"], err)
	}
	return obs
}

func TestRenderObservationNumeric(t *testing.T) {
	tests := []struct {
		m       Measurement
		mdc     string
		loinc   string
		ucum    string
		profile string
		cat     string
	}{
		{Measurement{Code: CodePulseRate, Unit: "/min", Value: 71}, "149546", "8867-4", "/min", profileHeartRate, "vital-signs"},
		{Measurement{Code: CodeSpO2, Unit: "%", Value: 97}, "150456", "2708-6", "%", profileOxygenSat, "vital-signs"},
		{Measurement{Code: CodeBodyTemperature, Unit: "Cel", Value: 36.6}, "150364", "8310-5", "Cel", profileBodyTemp, "vital-signs"},
		{Measurement{Code: CodeBodyWeight, Unit: "kg", Value: 68.4}, "188736", "29463-7", "kg", profileBodyWeight, "vital-signs"},
		{Measurement{Code: CodeGlucoseCapillary, Unit: "mg/dL", Value: 104}, "160184", "41653-7", "mg/dL", "", "laboratory"},
		{Measurement{Code: CodeGlucoseCapillary, Unit: "mmol/L", Value: 5.8}, "160184", "14743-9", "mmol/L", "", "laboratory"},
	}
	for _, tt := range tests {
		t.Run(tt.loinc+"/"+tt.ucum, func(t *testing.T) {
			obs := decodeObservation(t, reading(tt.m, 0))
			got := codings(obs.Code)
			if got[SystemMDC] != tt.mdc || got[SystemLOINC] != tt.loinc {
				t.Errorf("code codings = %v, want MDC %s and LOINC %s", got, tt.mdc, tt.loinc)
			}
			q := obs.ValueQuantity
			if q == nil || *q.System != SystemUCUM || *q.Code != tt.ucum || q.Value.String() != strconv.FormatFloat(tt.m.Value, 'f', -1, 64) {
				t.Fatalf("valueQuantity = %+v, want %v %s in UCUM", q, tt.m.Value, tt.ucum)
			}
			wantProfiles := []string{ProfilePHDNumeric}
			if tt.profile != "" {
				wantProfiles = append(wantProfiles, tt.profile)
			}
			if diff := cmp.Diff(wantProfiles, obs.Meta.Profile); diff != "" {
				t.Errorf("meta.profile (-want +got):\n%s", diff)
			}
			if c := codings(obs.Category[0]); c[SystemCategory] != tt.cat {
				t.Errorf("category = %v, want %s", c, tt.cat)
			}
			if *obs.Subject.Reference != "Patient/pt-7f3a9c" || *obs.Device.Reference != "Device/bp-0001" {
				t.Errorf("subject/device = %s/%s", *obs.Subject.Reference, *obs.Device.Reference)
			}
			if *obs.EffectiveDateTime != "2026-03-14T07:05:09.250Z" || obs.Status.Code() != "final" {
				t.Errorf("effective/status = %s/%s", *obs.EffectiveDateTime, obs.Status.Code())
			}
			if *obs.Id != "00112233445566778899aabbccddeeff-3" || len(obs.Interpretation) != 0 {
				t.Errorf("id = %s, interpretation = %v", *obs.Id, obs.Interpretation)
			}
		})
	}
}

func TestRenderObservationBloodPressure(t *testing.T) {
	m := Measurement{Code: CodeBloodPressure, Unit: "mm[Hg]", Components: []Component{
		{Code: CodeSystolic, Value: 295, Flag: FlagAboveLimits}, {Code: CodeDiastolic, Value: 82}, {Code: CodeMeanPressure, Value: 97}}}
	obs := decodeObservation(t, reading(m, FlagAboveLimits))
	if got := codings(obs.Code); got[SystemMDC] != "150020" || got[SystemLOINC] != "85354-9" {
		t.Errorf("code = %v, want MDC 150020 and LOINC 85354-9", got)
	}
	if obs.ValueQuantity != nil {
		t.Errorf("compound blood pressure carries a top-level value")
	}
	want := []struct{ mdc, loinc, value, interp string }{
		{"150021", "8480-6", "295", "HX"}, {"150022", "8462-4", "82", ""}, {"150023", "8478-0", "97", ""},
	}
	if len(obs.Component) != len(want) {
		t.Fatalf("%d components, want %d", len(obs.Component), len(want))
	}
	for i, w := range want {
		c := obs.Component[i]
		got := codings(c.Code)
		if got[SystemMDC] != w.mdc || got[SystemLOINC] != w.loinc {
			t.Errorf("component %d codes = %v, want %s/%s", i, got, w.mdc, w.loinc)
		}
		if c.ValueQuantity.Value.String() != w.value || *c.ValueQuantity.Code != "mm[Hg]" || *c.ValueQuantity.System != SystemUCUM {
			t.Errorf("component %d value = %s %s, want %s mm[Hg]", i, c.ValueQuantity.Value, *c.ValueQuantity.Code, w.value)
		}
		gotInterp := ""
		if len(c.Interpretation) > 0 {
			gotInterp = *c.Interpretation[0].Coding[0].Code
		}
		if gotInterp != w.interp {
			t.Errorf("component %d interpretation = %q, want %q", i, gotInterp, w.interp)
		}
	}
	if diff := cmp.Diff([]string{ProfilePHDCompoundNumeric, profileBP}, obs.Meta.Profile); diff != "" {
		t.Errorf("meta.profile (-want +got):\n%s", diff)
	}
}

func TestRenderObservationFlagged(t *testing.T) {
	obs := decodeObservation(t, reading(Measurement{Code: CodeSpO2, Unit: "%", Value: 42}, FlagBelowLimits))
	if len(obs.Interpretation) != 1 {
		t.Fatalf("interpretation = %v, want one", obs.Interpretation)
	}
	c := obs.Interpretation[0].Coding[0]
	if *c.System != SystemInterpretation || *c.Code != "LX" {
		t.Errorf("interpretation = %s#%s, want %s#LX", *c.System, *c.Code, SystemInterpretation)
	}
}

// Sleep duration has no MDC code: it must not be presented as one.
func TestRenderObservationSleepHasNoMDCCoding(t *testing.T) {
	obs := decodeObservation(t, reading(Measurement{Code: CodeSleepDuration, Unit: "h", Value: 7.5}, 0))
	got := codings(obs.Code)
	if _, ok := got[SystemMDC]; ok {
		t.Errorf("sleep duration carries an MDC coding: %v", got)
	}
	if got[SystemLOINC] != "93832-4" {
		t.Errorf("LOINC = %q, want 93832-4", got[SystemLOINC])
	}
	if len(obs.Meta.Profile) != 0 {
		t.Errorf("sleep duration claims profiles %v it cannot meet", obs.Meta.Profile)
	}
}

func TestRenderObservationRefusesUnknown(t *testing.T) {
	_, err := RenderObservation(reading(Measurement{Code: 42, Unit: "kg"}, 0))
	wantReason(t, "RenderObservation", err, ReasonUnknownCode)
}
