package access

import "slices"

// Role is a staff member's role in the hospital.
type Role string

// The roles of issue 4. The schema declares the same set as the enum Role.
const (
	Physician          Role = "physician"
	Nurse              Role = "nurse"
	Pharmacist         Role = "pharmacist"
	Administrative     Role = "administrative"
	ITAdmin            Role = "it_admin"
	SecurityOfficer    Role = "security_officer"
	Researcher         Role = "researcher"
	ExternalMaintainer Role = "external_maintainer"
	// System is one of medsec's own jobs (ingestion, import, retention);
	// Staff.Position names the job. It is never a login.
	System Role = "system"
)

// Roles lists every role, in a fixed order.
func Roles() []Role { return slices.Clone(roles) }

var roles = []Role{Physician, Nurse, Pharmacist, Administrative, ITAdmin, SecurityOfficer, Researcher, ExternalMaintainer, System}

// Action is what a request does with the data.
type Action string

// Actions a policy can permit.
const (
	// Read opens one patient's data.
	Read Action = "read"
	// Search finds a patient's data by patient, code or date.
	Search Action = "search"
	// Write creates or changes data.
	Write Action = "write"
	// Export takes a copy out of the system (a document, a file, a package).
	Export Action = "export"
	// BreakGlassAction opens emergency access to a patient's record.
	BreakGlassAction Action = "break_glass"
	// Destroy crypto-shreds a patient or deletes records whose retention
	// ended.
	Destroy Action = "destroy"
)

// Actions lists every action, in a fixed order.
func Actions() []Action { return slices.Clone(actions) }

var actions = []Action{Read, Search, Write, Export, BreakGlassAction, Destroy}

// DataClass is a class of patient data; a request is about one class of one
// patient.
type DataClass string

// Data classes, with the FHIR resources the API maps to them.
const (
	Demographics DataClass = "demographics" // Patient
	Observation  DataClass = "observation"  // Observation
	Encounter    DataClass = "encounter"    // Encounter
	Order        DataClass = "order"        // ServiceRequest (OCS orders)
	Medication   DataClass = "medication"   // MedicationRequest
	Note         DataClass = "note"         // DocumentReference (EMR notes)
	Imaging      DataClass = "imaging"      // ImagingStudy, DICOM (PACS)
	Billing      DataClass = "billing"      // claims and accounts
	ConsentData  DataClass = "consent"      // Consent
	Audit        DataClass = "audit"        // AuditEvent
)

// DataClasses lists every data class, in a fixed order.
func DataClasses() []DataClass { return slices.Clone(dataClasses) }

var dataClasses = []DataClass{Demographics, Observation, Encounter, Order, Medication, Note, Imaging, Billing, ConsentData, Audit}

// Clinical reports whether the class is clinical data (results, encounters,
// orders, medication, notes, images).
func (c DataClass) Clinical() bool {
	switch c {
	case Observation, Encounter, Order, Medication, Note, Imaging:
		return true
	}
	return false
}

// Systems that hold patient data; a time-boxed grant names the systems it
// covers (or "*" for all).
const (
	SystemEMR   = "emr"
	SystemOCS   = "ocs"
	SystemPACS  = "pacs"
	SystemAudit = "audit"
)

// SystemOf names the system that holds a data class: OCS for orders and
// medication, PACS for images, the audit log for audit records, the EMR for
// the rest.
func SystemOf(c DataClass) string {
	switch c {
	case Order, Medication:
		return SystemOCS
	case Imaging:
		return SystemPACS
	case Audit:
		return SystemAudit
	}
	return SystemEMR
}

// Label is a sensitivity label on a patient's record.
type Label string

// Sensitivity labels. The first four need a care relationship; VIP access is
// flagged.
const (
	MentalHealth Label = "mental_health"
	HIV          Label = "hiv"
	Genetics     Label = "genetics"
	SubstanceUse Label = "substance_use"
	VIP          Label = "vip"
)

// Labels lists every sensitivity label, in a fixed order.
func Labels() []Label { return slices.Clone(labels) }

var labels = []Label{MentalHealth, HIV, Genetics, SubstanceUse, VIP}

// Purpose is a purpose of use, an HL7 v3 ActReason code.
type Purpose string

// Purposes of use (HL7 v3 PurposeOfUse value set).
const (
	Treatment          Purpose = "TREAT"
	EmergencyTreatment Purpose = "ETREAT"
	Payment            Purpose = "HPAYMT"
	Operations         Purpose = "HOPERAT"
	Research           Purpose = "HRESCH"
	PublicHealth       Purpose = "PUBHLTH"
	// MLTraining is ActReason MLTRAINING, "machine learning training", added
	// to the PurposeOfUse hierarchy in HL7 Terminology (ActReason 4.0.0).
	MLTraining Purpose = "MLTRAINING"
)

// PurposeSystem is the code system of every Purpose.
const PurposeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

// PurposeInfo describes a purpose of use for people and for FHIR codings.
type PurposeInfo struct {
	Code    Purpose `json:"code"`
	System  string  `json:"system"`
	Display string  `json:"display"`
	// NeedsConsent is true when the purpose is not treatment of the patient,
	// so the patient's consent (or, for PUBHLTH, a legal basis) is required.
	NeedsConsent bool `json:"needs_consent"`
}

// Purposes lists the purposes medsec accepts, in a fixed order, with their
// HL7 display names.
func Purposes() []PurposeInfo { return slices.Clone(purposes) }

var purposes = []PurposeInfo{
	{Treatment, PurposeSystem, "treatment", false},
	{EmergencyTreatment, PurposeSystem, "emergency treatment", false},
	{Payment, PurposeSystem, "healthcare payment", true},
	{Operations, PurposeSystem, "healthcare operations", true},
	{Research, PurposeSystem, "healthcare research", true},
	{PublicHealth, PurposeSystem, "public health", true},
	{MLTraining, PurposeSystem, "machine learning training", true},
}

// ParsePurpose returns the purpose with the given code, or ErrUnknownPurpose.
// The API uses it to check the purpose-of-use header.
func ParsePurpose(code string) (Purpose, error) {
	for _, p := range purposes {
		if string(p.Code) == code {
			return p.Code, nil
		}
	}
	return "", ErrUnknownPurpose
}

func knownRole(r Role) bool           { return slices.Contains(roles, r) }
func knownAction(a Action) bool       { return slices.Contains(actions, a) }
func knownDataClass(c DataClass) bool { return slices.Contains(dataClasses, c) }
func knownLabel(l Label) bool         { return slices.Contains(labels, l) }

func knownPurpose(p Purpose) bool {
	_, err := ParsePurpose(string(p))
	return err == nil
}

// Flags the shipped policies put on decisions (policies/flags.cedar). The
// door and the anomaly rules branch on them; a hospital's own policies may
// add others.
const (
	// FlagBreakGlass: break-glass was claimed (granted or refused).
	FlagBreakGlass = "break-glass"
	// FlagReview: the security officer reviews this access.
	FlagReview = "review"
	// FlagVIP: the patient is labelled VIP.
	FlagVIP = "vip"
	// FlagDeidentifiedOnly: hand the data over de-identified only
	// (research, model training).
	FlagDeidentifiedOnly = "deidentified-only"
	// FlagGrant: maintenance staff used a time-boxed grant.
	FlagGrant = "grant"
	// FlagLegalBasis: public-health use under a legal basis, not consent.
	FlagLegalBasis = "legal-basis"
	// FlagSensitive: clinical data with a sensitivity label was opened.
	FlagSensitive = "sensitive"
	// FlagCoWorker: the patient is a member of staff.
	FlagCoWorker = "co-worker"
	// FlagSameSurname: the patient shares the user's surname.
	FlagSameSurname = "same-surname"
)
