package phd

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckMeasurement(t *testing.T) {
	at := testNow.Add(-time.Hour)
	bp := func(sys, dia float64) Measurement {
		return Measurement{Code: CodeBloodPressure, Unit: "mm[Hg]", Time: at,
			Components: []Component{{Code: CodeSystolic, Value: sys}, {Code: CodeDiastolic, Value: dia}}}
	}
	tests := []struct {
		name   string
		m      Measurement
		flag   Flag
		reason Reason // "" when accepted
	}{
		{"blood pressure", bp(128, 82), 0, ""},
		{"hypertensive but plausible", bp(185, 115), 0, ""},
		{"systolic above limits", bp(295, 90), FlagAboveLimits, ""},
		{"diastolic below limits", bp(120, 20), FlagBelowLimits, ""},
		{"glucose mg/dL", Measurement{Code: CodeGlucoseCapillary, Unit: "mg/dL", Value: 95, Time: at}, 0, ""},
		{"glucose mmol/L", Measurement{Code: CodeGlucoseCapillary, Unit: "mmol/L", Value: 5.4, Time: at}, 0, ""},
		{"glucose mmol/L flagged", Measurement{Code: CodeGlucoseCapillary, Unit: "mmol/L", Value: 40, Time: at}, FlagAboveLimits, ""},
		{"SpO2 over 100 flagged", Measurement{Code: CodeSpO2, Unit: "%", Value: 101, Time: at}, FlagAboveLimits, ""},
		{"temperature too low flagged", Measurement{Code: CodeBodyTemperature, Unit: "Cel", Value: 25, Time: at}, FlagBelowLimits, ""},
		{"sleep in minutes", Measurement{Code: CodeSleepDuration, Unit: "min", Value: 420, Time: at}, 0, ""},
		{"unknown code", Measurement{Code: Code(150999), Unit: "mm[Hg]", Value: 1, Time: at}, 0, ReasonUnknownCode},
		{"unit mismatch", Measurement{Code: CodeBodyTemperature, Unit: "[degF]", Value: 98.6, Time: at}, 0, ReasonUnitMismatch},
		{"weight in grams", Measurement{Code: CodeBodyWeight, Unit: "g", Value: 68000, Time: at}, 0, ReasonUnitMismatch},
		{"blood pressure in kPa", Measurement{Code: CodeBloodPressure, Unit: "kPa", Time: at,
			Components: []Component{{Code: CodeSystolic, Value: 16}, {Code: CodeDiastolic, Value: 11}}}, 0, ReasonUnitMismatch},
		{"future timestamp", Measurement{Code: CodeSpO2, Unit: "%", Value: 97, Time: testNow.Add(time.Hour)}, 0, ReasonTimestampFuture},
		{"within clock skew", Measurement{Code: CodeSpO2, Unit: "%", Value: 97, Time: testNow.Add(2 * time.Minute)}, 0, ""},
		{"too old", Measurement{Code: CodeSpO2, Unit: "%", Value: 97, Time: testNow.AddDate(0, -6, 0)}, 0, ReasonTimestampTooOld},
		{"not a number", Measurement{Code: CodeSpO2, Unit: "%", Value: math.NaN(), Time: at}, 0, ReasonMalformed},
		{"infinite", Measurement{Code: CodeBodyWeight, Unit: "kg", Value: math.Inf(1), Time: at}, 0, ReasonMalformed},
		{"simple kind with components", Measurement{Code: CodeSpO2, Unit: "%", Value: 97, Time: at,
			Components: []Component{{Code: CodeSystolic, Value: 1}}}, 0, ReasonMalformed},
		{"compound with top-level value", func() Measurement { m := bp(120, 80); m.Value = 120; return m }(), 0, ReasonMalformed},
		{"compound lacks diastolic", Measurement{Code: CodeBloodPressure, Unit: "mm[Hg]", Time: at,
			Components: []Component{{Code: CodeSystolic, Value: 120}}}, 0, ReasonMalformed},
		{"compound with foreign component", func() Measurement {
			m := bp(120, 80)
			m.Components = append(m.Components, Component{Code: CodePulseRate, Value: 70})
			return m
		}(), 0, ReasonUnknownCode},
		{"compound with repeated component", func() Measurement {
			m := bp(120, 80)
			m.Components = append(m.Components, Component{Code: CodeSystolic, Value: 121})
			return m
		}(), 0, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, flag, err := CheckMeasurement(tt.m, testNow, DefaultLimits())
			if tt.reason != "" {
				wantReason(t, "CheckMeasurement", err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("CheckMeasurement: %v", err)
			}
			if flag != tt.flag {
				t.Errorf("flag = %b, want %b", flag, tt.flag)
			}
		})
	}
}

func TestCheckMeasurementFlagsComponents(t *testing.T) {
	m := Measurement{Code: CodeBloodPressure, Unit: "mm[Hg]", Time: testNow,
		Components: []Component{{Code: CodeSystolic, Value: 300}, {Code: CodeDiastolic, Value: 80}, {Code: CodeMeanPressure, Value: 20}}}
	got, flag, err := CheckMeasurement(m, testNow, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if want := FlagAboveLimits | FlagBelowLimits; flag != want {
		t.Errorf("flag = %b, want %b", flag, want)
	}
	want := []Component{{CodeSystolic, 300, FlagAboveLimits}, {CodeDiastolic, 80, 0}, {CodeMeanPressure, 20, FlagBelowLimits}}
	if diff := cmp.Diff(want, got.Components); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	if m.Components[0].Flag != 0 {
		t.Errorf("CheckMeasurement changed its input")
	}
}

func TestAssess(t *testing.T) {
	b := sampleBatch(t, "dev-1", 3)
	b.Measurements = append(b.Measurements,
		Measurement{Code: Code(1234), Unit: "kg", Value: 1, Time: testNow},
		Measurement{Code: CodeSpO2, Unit: "%", Value: 42, Time: testNow},
		Measurement{Code: CodeBodyWeight, Unit: "lb", Value: 150, Time: testNow},
	)
	a := Assess(&b, testNow, DefaultLimits())
	var gotIdx []int
	for _, r := range a.Readings {
		gotIdx = append(gotIdx, r.Index)
		if r.DeviceID != "dev-1" || r.Patient != b.Patient || r.MessageID != b.MessageID {
			t.Errorf("reading %d lost its provenance: %+v", r.Index, r)
		}
	}
	if diff := cmp.Diff([]int{0, 1, 2, 4}, gotIdx); diff != "" {
		t.Errorf("accepted indices (-want +got):\n%s", diff)
	}
	wantRej := []Rejection{{Index: 3, Reason: ReasonUnknownCode}, {Index: 5, Reason: ReasonUnitMismatch}}
	if diff := cmp.Diff(wantRej, a.Rejected, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Detail" }, cmp.Ignore())); diff != "" {
		t.Errorf("rejections (-want +got):\n%s", diff)
	}
	if a.Flagged() != 1 {
		t.Errorf("Flagged() = %d, want 1", a.Flagged())
	}
	for _, r := range a.Rejected {
		if r.Detail == "" {
			t.Errorf("rejection %d has no detail", r.Index)
		}
	}
}

func TestLimitsCheckSent(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct {
		sent   time.Time
		reason Reason
	}{
		{testNow, ""},
		{testNow.Add(4 * time.Minute), ""},
		{testNow.Add(6 * time.Minute), ReasonTimestampFuture},
		{testNow.Add(-6 * 24 * time.Hour), ""},
		{testNow.Add(-8 * 24 * time.Hour), ReasonTimestampTooOld},
	}
	for _, tt := range tests {
		err := lim.CheckSent(tt.sent, testNow)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("CheckSent(%v) = %v, want nil", tt.sent, err)
			}
			continue
		}
		wantReason(t, "CheckSent", err, tt.reason)
	}
}

func TestErrorDetailHasNoValue(t *testing.T) {
	_, _, err := CheckMeasurement(Measurement{Code: CodeBodyWeight, Unit: "lb", Value: 187.25, Time: testNow}, testNow, DefaultLimits())
	if err == nil {
		t.Fatal("want unit mismatch")
	}
	if s := err.Error(); strings.Contains(s, "187") {
		t.Errorf("error %q contains the measured value", s)
	}
}
