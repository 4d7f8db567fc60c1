package phd

import (
	"testing"
)

// The partition::term pairs below are as the IEEE 11073-104xx device
// specializations define them; the test proves the numeric codes the FHIR
// rendering carries are built from them.
func TestCatalogCodes(t *testing.T) {
	tests := []struct {
		code      Code
		refID     string
		partition uint16
		term      uint16
		loinc     string
	}{
		{CodeBloodPressure, "MDC_PRESS_BLD_NONINV", 2, 18948, "85354-9"},
		{CodeSystolic, "MDC_PRESS_BLD_NONINV_SYS", 2, 18949, "8480-6"},
		{CodeDiastolic, "MDC_PRESS_BLD_NONINV_DIA", 2, 18950, "8462-4"},
		{CodeMeanPressure, "MDC_PRESS_BLD_NONINV_MEAN", 2, 18951, "8478-0"},
		{CodePulseRate, "MDC_PULS_RATE_NON_INV", 2, 18474, "8867-4"},
		{CodeOximetryPulseRate, "MDC_PULS_OXIM_PULS_RATE", 2, 18458, "8867-4"},
		{CodeHeartRate, "MDC_ECG_HEART_RATE", 2, 16770, "8867-4"},
		{CodeGlucoseCapillary, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", 2, 29112, ""},
		{CodeBodyWeight, "MDC_MASS_BODY_ACTUAL", 2, 57664, "29463-7"},
		{CodeSpO2, "MDC_PULS_OXIM_SAT_O2", 2, 19384, "2708-6"},
		{CodeBodyTemperature, "MDC_TEMP_BODY", 2, 19292, "8310-5"},
		{CodeSleepDuration, "MEDSEC_PVT_SLEEP_DURATION", PartitionPrivate, 1, "93832-4"},
	}
	for _, tt := range tests {
		t.Run(tt.refID, func(t *testing.T) {
			if got := MDCCode(tt.partition, tt.term); got != tt.code {
				t.Errorf("MDCCode(%d, %d) = %d, want %d", tt.partition, tt.term, got, tt.code)
			}
			k, ok := LookupKind(tt.code)
			if !ok {
				t.Fatalf("LookupKind(%d) found nothing", tt.code)
			}
			if k.RefID != tt.refID || k.LOINC != tt.loinc {
				t.Errorf("kind = %s/%s, want %s/%s", k.RefID, k.LOINC, tt.refID, tt.loinc)
			}
		})
	}
}

func TestCatalogUnits(t *testing.T) {
	tests := []struct {
		code  Code
		ucum  string
		refID string
		full  Code
	}{
		{CodeSystolic, "mm[Hg]", "MDC_DIM_MMHG", 266016},
		{CodePulseRate, "/min", "MDC_DIM_BEAT_PER_MIN", 264864},
		{CodeGlucoseCapillary, "mg/dL", "MDC_DIM_MILLI_G_PER_DL", 264274},
		{CodeGlucoseCapillary, "mmol/L", "MDC_DIM_MILLI_MOLE_PER_L", 266866},
		{CodeBodyWeight, "kg", "MDC_DIM_KILO_G", 263875},
		{CodeSpO2, "%", "MDC_DIM_PERCENT", 262688},
		{CodeBodyTemperature, "Cel", "MDC_DIM_DEGC", 268192},
		{CodeSleepDuration, "h", "MDC_DIM_HR", 264384},
	}
	for _, tt := range tests {
		t.Run(tt.refID, func(t *testing.T) {
			k, _ := LookupKind(tt.code)
			u, ok := k.Unit(tt.ucum)
			if !ok {
				t.Fatalf("%s has no unit %q", k.RefID, tt.ucum)
			}
			if u.MDCRefID != tt.refID || u.MDCCode != tt.full || u.MDCCode.Partition() != PartitionDimensions {
				t.Errorf("unit = %s %d, want %s %d in partition 4", u.MDCRefID, u.MDCCode, tt.refID, tt.full)
			}
		})
	}
}

// Every kind must be renderable: a unit with sane limits, a LOINC code for
// every unit, a category, and components that exist and share its unit.
func TestCatalogConsistent(t *testing.T) {
	seen := map[Code]bool{}
	for _, k := range Kinds() {
		if seen[k.Code] {
			t.Errorf("%s listed twice", k.RefID)
		}
		seen[k.Code] = true
		if len(k.Units) == 0 || k.Category == "" || k.Display == "" {
			t.Errorf("%s lacks units, category or display", k.RefID)
		}
		for _, u := range k.Units {
			if loinc, _ := k.LOINCFor(u); loinc == "" {
				t.Errorf("%s in %s has no LOINC code", k.RefID, u.UCUM)
			}
			if !k.Compound() && !(u.Limits.Low < u.Limits.High) {
				t.Errorf("%s in %s has limits %v", k.RefID, u.UCUM, u.Limits)
			}
		}
		for _, c := range k.Components {
			ck, ok := LookupKind(c)
			if !ok {
				t.Errorf("%s component %d not in catalog", k.RefID, c)
				continue
			}
			for _, u := range k.Units {
				if _, ok := ck.Unit(u.UCUM); !ok {
					t.Errorf("%s component %s lacks unit %s", k.RefID, ck.RefID, u.UCUM)
				}
			}
		}
	}
}
