package phd

import (
	"fmt"
	"slices"
)

// Code is a 32-bit IEEE 11073-10101 (MDC) nomenclature code: the partition in
// the upper 16 bits and the term code in the lower 16 bits, as the PHD IG
// writes it in Coding.code (e.g. MDC_PRESS_BLD_NONINV_SYS = 2::18949 = 150021).
type Code uint32

// MDCCode builds a Code from a partition and a term code.
func MDCCode(partition, term uint16) Code { return Code(uint32(partition)<<16 | uint32(term)) }

// Partition is the nomenclature partition (2 = SCADA, 4 = dimensions, 1024 = private).
func (c Code) Partition() uint16 { return uint16(c >> 16) }

// Term is the term code within the partition.
func (c Code) Term() uint16 { return uint16(c) }

func (c Code) String() string { return fmt.Sprintf("%d::%d", c.Partition(), c.Term()) }

// Nomenclature partitions used here (IEEE 11073-10101 §A).
const (
	PartitionSCADA      uint16 = 2    // MDC_PART_SCADA: measurements
	PartitionDimensions uint16 = 4    // MDC_PART_DIM: units
	PartitionPrivate    uint16 = 1024 // MDC_PART_PVT: private, not interoperable
)

// Measurement codes of the catalog. Sources, checked against each other:
// the HL7 FHIR Personal Health Device IG (STU 2) examples and code tables
// (compound-numeric-blood-pressure, temperature-observation,
// numeric-spotnumeric), and the IEEE 11073-104xx device specialization term
// codes as published in the open 11073-20601 agent/manager implementations
// (partition::term). The numeric forms are partition<<16 | term.
const (
	// MDC_PRESS_BLD_NONINV (2::18948), the compound non-invasive blood pressure.
	CodeBloodPressure = Code(150020)
	// MDC_PRESS_BLD_NONINV_SYS (2::18949).
	CodeSystolic = Code(150021)
	// MDC_PRESS_BLD_NONINV_DIA (2::18950).
	CodeDiastolic = Code(150022)
	// MDC_PRESS_BLD_NONINV_MEAN (2::18951).
	CodeMeanPressure = Code(150023)
	// MDC_PULS_RATE_NON_INV (2::18474): pulse rate from a blood pressure monitor.
	CodePulseRate = Code(149546)
	// MDC_PULS_OXIM_PULS_RATE (2::18458): pulse rate from a pulse oximeter.
	CodeOximetryPulseRate = Code(149530)
	// MDC_ECG_HEART_RATE (2::16770), called MDC_ECG_CARD_BEAT_RATE in later
	// editions: heart rate from an ECG-capable device or chest strap.
	CodeHeartRate = Code(147842)
	// MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD (2::29112): glucometer reading.
	CodeGlucoseCapillary = Code(160184)
	// MDC_MASS_BODY_ACTUAL (2::57664): weighing scale.
	CodeBodyWeight = Code(188736)
	// MDC_PULS_OXIM_SAT_O2 (2::19384): SpO2.
	CodeSpO2 = Code(150456)
	// MDC_TEMP_BODY (2::19292): body temperature.
	CodeBodyTemperature = Code(150364)
	// Sleep duration has no IEEE 11073-10101 term we could find in the base
	// nomenclature or the PHD specializations (the activity hub and sleep
	// related 104xx parts code sessions and events, not a total duration).
	// medsec therefore uses a documented private code, MDC_PART_PVT (1024)
	// term 1, on the wire only; FHIR carries LOINC 93832-4 "Sleep duration"
	// and never presents this code as an MDC coding.
	CodeSleepDuration = Code(1024<<16 | 1)
)

// Range is an inclusive interval of values in one unit.
type Range struct {
	Low, High float64
}

// Contains reports whether v lies within the range.
func (r Range) Contains(v float64) bool { return v >= r.Low && v <= r.High }

// Unit is one unit the catalog accepts for a kind of measurement.
type Unit struct {
	UCUM     string // the UCUM code, e.g. "mm[Hg]"; what the wire carries
	Display  string // how a person writes it, e.g. "mmHg"
	MDCRefID string // e.g. "MDC_DIM_MMHG"
	MDCCode  Code   // e.g. 4::3872 = 266016
	// Limits are the physiological limits: a value outside is implausible
	// for a living patient or the device's range (a measurement error, a
	// device fault, or an emergency). It is stored flagged, never dropped.
	Limits Range
	// LOINC overrides the kind's LOINC code for this unit (glucose: mass
	// and molar concentration have different LOINC codes).
	LOINC, LOINCDisplay string
}

// Kind describes one measurement the protocol knows.
type Kind struct {
	Code         Code
	RefID        string // MDC reference id, e.g. "MDC_PRESS_BLD_NONINV_SYS"
	Display      string // e.g. "Systolic blood pressure"
	LOINC        string // LOINC code of the FHIR vital-signs profile where one applies
	LOINCDisplay string
	// MoreLOINC are further LOINC codings FHIR consumers expect (SpO2 by
	// pulse oximetry 59408-5 beside 2708-6).
	MoreLOINC []Coding
	// Category is the FHIR observation-category code: vital-signs,
	// laboratory (glucose) or activity (sleep).
	Category string
	// VitalProfile is the FHIR R4 vital signs profile the Observation
	// conforms to ("" when none applies).
	VitalProfile string
	// Private marks a code that is not in IEEE 11073-10101 (see
	// CodeSleepDuration); FHIR then carries no MDC coding for it.
	Private bool
	Units   []Unit
	// Components of a compound measurement (blood pressure), in order, and
	// how many of the first ones are required.
	Components         []Code
	RequiredComponents int
}

// Unit returns the kind's unit with the given UCUM code.
func (k Kind) Unit(ucum string) (Unit, bool) {
	for _, u := range k.Units {
		if u.UCUM == ucum {
			return u, true
		}
	}
	return Unit{}, false
}

// Compound reports whether the kind is carried as components.
func (k Kind) Compound() bool { return len(k.Components) > 0 }

// LOINCFor returns the LOINC code and display for a value in unit u.
func (k Kind) LOINCFor(u Unit) (code, display string) {
	if u.LOINC != "" {
		return u.LOINC, u.LOINCDisplay
	}
	return k.LOINC, k.LOINCDisplay
}

// FHIR R4 vital signs profiles (FHIR R4 §observation-vitalsigns).
const (
	profileVitalSigns = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
	profileBP         = "http://hl7.org/fhir/StructureDefinition/bp"
	profileHeartRate  = "http://hl7.org/fhir/StructureDefinition/heartrate"
	profileOxygenSat  = "http://hl7.org/fhir/StructureDefinition/oxygensat"
	profileBodyTemp   = "http://hl7.org/fhir/StructureDefinition/bodytemp"
	profileBodyWeight = "http://hl7.org/fhir/StructureDefinition/bodyweight"
)

// Units. MDC dimension codes are partition 4 (MDC_PART_DIM); the full codes
// are the ones the PHD IG examples and IHE PCD-01 messages carry
// (e.g. 266016^MDC_DIM_MMHG, 264864^MDC_DIM_BEAT_PER_MIN, 262688^MDC_DIM_PERCENT,
// 263875^MDC_DIM_KILO_G, 264274^MDC_DIM_MILLI_G_PER_DL).
var (
	unitMmHg   = Unit{UCUM: "mm[Hg]", Display: "mmHg", MDCRefID: "MDC_DIM_MMHG", MDCCode: MDCCode(4, 3872)}
	unitPerMin = Unit{UCUM: "/min", Display: "beats/minute", MDCRefID: "MDC_DIM_BEAT_PER_MIN", MDCCode: MDCCode(4, 2720), Limits: Range{25, 250}}
)

func withLimits(u Unit, low, high float64) Unit {
	u.Limits = Range{low, high}
	return u
}

// catalog is the list of measurements medsec accepts. LOINC codes are the
// ones the FHIR R4 vital signs profiles fix (bp 85354-9 with 8480-6 and
// 8462-4, heartrate 8867-4, oxygensat 2708-6, bodytemp 8310-5, bodyweight
// 29463-7; 8478-0 mean blood pressure from the vital-signs value set), as
// the PHD IG examples pair them with the MDC codes; glucose and sleep
// duration (93832-4) are from LOINC itself. Physiological limits
// are wide on purpose: they catch device faults and emergencies, not
// ordinary abnormal values (a hypertensive 180/110 is not flagged).
var catalog = []Kind{
	{
		Code: CodeBloodPressure, RefID: "MDC_PRESS_BLD_NONINV", Display: "Blood pressure",
		LOINC: "85354-9", LOINCDisplay: "Blood pressure panel with all children optional",
		Category: "vital-signs", VitalProfile: profileBP,
		Units:      []Unit{unitMmHg},
		Components: []Code{CodeSystolic, CodeDiastolic, CodeMeanPressure}, RequiredComponents: 2,
	},
	{
		Code: CodeSystolic, RefID: "MDC_PRESS_BLD_NONINV_SYS", Display: "Systolic blood pressure",
		LOINC: "8480-6", LOINCDisplay: "Systolic blood pressure",
		Category: "vital-signs", VitalProfile: profileVitalSigns,
		Units: []Unit{withLimits(unitMmHg, 50, 280)},
	},
	{
		Code: CodeDiastolic, RefID: "MDC_PRESS_BLD_NONINV_DIA", Display: "Diastolic blood pressure",
		LOINC: "8462-4", LOINCDisplay: "Diastolic blood pressure",
		Category: "vital-signs", VitalProfile: profileVitalSigns,
		Units: []Unit{withLimits(unitMmHg, 25, 200)},
	},
	{
		Code: CodeMeanPressure, RefID: "MDC_PRESS_BLD_NONINV_MEAN", Display: "Mean blood pressure",
		LOINC: "8478-0", LOINCDisplay: "Mean blood pressure",
		Category: "vital-signs", VitalProfile: profileVitalSigns,
		Units: []Unit{withLimits(unitMmHg, 30, 230)},
	},
	{
		Code: CodePulseRate, RefID: "MDC_PULS_RATE_NON_INV", Display: "Pulse rate",
		LOINC: "8867-4", LOINCDisplay: "Heart rate",
		Category: "vital-signs", VitalProfile: profileHeartRate,
		Units: []Unit{unitPerMin},
	},
	{
		Code: CodeOximetryPulseRate, RefID: "MDC_PULS_OXIM_PULS_RATE", Display: "Pulse rate (pulse oximetry)",
		LOINC: "8867-4", LOINCDisplay: "Heart rate",
		Category: "vital-signs", VitalProfile: profileHeartRate,
		Units: []Unit{unitPerMin},
	},
	{
		Code: CodeHeartRate, RefID: "MDC_ECG_HEART_RATE", Display: "Heart rate",
		LOINC: "8867-4", LOINCDisplay: "Heart rate",
		Category: "vital-signs", VitalProfile: profileHeartRate,
		Units: []Unit{unitPerMin},
	},
	{
		// Not a vital sign in FHIR; a home glucometer result is point-of-care
		// laboratory data. LOINC depends on the unit: 41653-7 (mass
		// concentration) or 14743-9 (molar concentration), both "in Capillary
		// blood by Glucometer". Limits follow the 20–600 mg/dL span of home
		// glucometers (1.1–33.3 mmol/L).
		Code: CodeGlucoseCapillary, RefID: "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", Display: "Glucose, capillary whole blood",
		Category: "laboratory",
		Units: []Unit{
			{UCUM: "mg/dL", Display: "mg/dL", MDCRefID: "MDC_DIM_MILLI_G_PER_DL", MDCCode: MDCCode(4, 2130), Limits: Range{20, 600},
				LOINC: "41653-7", LOINCDisplay: "Glucose [Mass/volume] in Capillary blood by Glucometer"},
			{UCUM: "mmol/L", Display: "mmol/L", MDCRefID: "MDC_DIM_MILLI_MOLE_PER_L", MDCCode: MDCCode(4, 4722), Limits: Range{1.1, 33.3},
				LOINC: "14743-9", LOINCDisplay: "Glucose [Moles/volume] in Capillary blood by Glucometer"},
		},
	},
	{
		Code: CodeBodyWeight, RefID: "MDC_MASS_BODY_ACTUAL", Display: "Body weight",
		LOINC: "29463-7", LOINCDisplay: "Body weight",
		Category: "vital-signs", VitalProfile: profileBodyWeight,
		Units: []Unit{{UCUM: "kg", Display: "kg", MDCRefID: "MDC_DIM_KILO_G", MDCCode: MDCCode(4, 1731), Limits: Range{2, 350}}},
	},
	{
		Code: CodeSpO2, RefID: "MDC_PULS_OXIM_SAT_O2", Display: "Oxygen saturation (SpO2)",
		LOINC: "2708-6", LOINCDisplay: "Oxygen saturation in Arterial blood",
		MoreLOINC: []Coding{{System: SystemLOINC, Code: "59408-5", Display: "Oxygen saturation in Arterial blood by Pulse oximetry"}},
		Category:  "vital-signs", VitalProfile: profileOxygenSat,
		// Below 50 % home oximeters are not calibrated; above 100 % is impossible.
		Units: []Unit{{UCUM: "%", Display: "%", MDCRefID: "MDC_DIM_PERCENT", MDCCode: MDCCode(4, 544), Limits: Range{50, 100}}},
	},
	{
		Code: CodeBodyTemperature, RefID: "MDC_TEMP_BODY", Display: "Body temperature",
		LOINC: "8310-5", LOINCDisplay: "Body temperature",
		Category: "vital-signs", VitalProfile: profileBodyTemp,
		Units: []Unit{{UCUM: "Cel", Display: "°C", MDCRefID: "MDC_DIM_DEGC", MDCCode: MDCCode(4, 6048), Limits: Range{30, 43}}},
	},
	{
		Code: CodeSleepDuration, RefID: "MEDSEC_PVT_SLEEP_DURATION", Display: "Sleep duration",
		LOINC: "93832-4", LOINCDisplay: "Sleep duration",
		Category: "activity", Private: true,
		Units: []Unit{
			{UCUM: "h", Display: "h", MDCRefID: "MDC_DIM_HR", MDCCode: MDCCode(4, 2240), Limits: Range{0, 20}},
			{UCUM: "min", Display: "min", MDCRefID: "MDC_DIM_MIN", MDCCode: MDCCode(4, 2208), Limits: Range{0, 1200}},
		},
	},
}

var catalogByCode = indexCatalog()

func indexCatalog() map[Code]int {
	m := make(map[Code]int, len(catalog))
	for i, k := range catalog {
		m[k.Code] = i
	}
	return m
}

// LookupKind returns the catalog entry for code. The entry shares its
// slices with the catalog: read it, do not change it.
func LookupKind(code Code) (Kind, bool) {
	i, ok := catalogByCode[code]
	if !ok {
		return Kind{}, false
	}
	return catalog[i], true
}

// Kinds returns every measurement kind the catalog knows, in catalog order.
func Kinds() []Kind { return slices.Clone(catalog) }

// componentOf reports whether c may appear as a component of k.
func (k Kind) componentOf(c Code) bool { return slices.Contains(k.Components, c) }
