package access

import (
	"time"
)

// Request is one question to the policy: may this member of staff do this
// action on this class of this patient's data, for this purpose, now? The
// door fills it from the database (staff account, patient record, consents,
// grants, break-glass state) before any patient data is decrypted.
type Request struct {
	Staff     Staff
	Patient   Patient
	Action    Action
	DataClass DataClass
	Purpose   Purpose
	// BreakGlass is the emergency access the user opened for this patient,
	// if any; the zero value means none.
	BreakGlass BreakGlass
	// Grants are the user's time-boxed grants (all of them; Decide picks the
	// one that covers this patient and system).
	Grants []Grant
	// LegalBasis names the law or order that allows a PUBHLTH use without
	// the patient's consent ("" when there is none).
	LegalBasis string
	// SameSurname: the patient shares the user's surname. CoWorker: the
	// patient is a member of staff. Both only add flags.
	SameSurname bool
	CoWorker    bool
	// Now is the time of the request; consents, grants and break-glass are
	// judged at this instant. It must be set.
	Now time.Time
}

// Staff is the member of staff asking, from the staff account and session.
type Staff struct {
	ID         string
	Role       Role
	Department string
	Position   string
	// Wards the staff member is assigned to (nurses).
	Wards []string
	// MFA is true when the session was signed in with a second factor.
	MFA bool
}

// Patient is what the policy needs to know about the patient.
type Patient struct {
	ID string
	// Department of the active encounter ("" when there is none).
	Department string
	Ward       string
	// Attending is the staff ID of the attending physician ("" if none).
	Attending string
	// CareTeam holds the staff IDs of the patient's care team.
	CareTeam        []string
	ActiveEncounter bool
	Labels          []Label
	// Consents are the patient's consent records; Decide uses those in force
	// at Request.Now that cover the requested data class.
	Consents []Consent
}

// Consent is one consent record: a permit or a denial of one purpose, for
// some data classes, during a period.
type Consent struct {
	Purpose Purpose
	// Permit is true for a permit, false for a denial. A denial wins.
	Permit bool
	// DataClasses the record covers; empty means every class.
	DataClasses []DataClass
	// From is when the record takes effect; Until when it ends (zero: it
	// does not end). A withdrawal ends the permit at once: set Until.
	From, Until time.Time
}

func (c Consent) inForce(now time.Time) bool {
	return !now.Before(c.From) && (c.Until.IsZero() || now.Before(c.Until))
}

func (c Consent) covers(class DataClass) bool {
	if len(c.DataClasses) == 0 {
		return true
	}
	for _, dc := range c.DataClasses {
		if dc == class {
			return true
		}
	}
	return false
}

// BreakGlass is an emergency access the user opened by typing a reason. The
// policy allows it for clinicians, for purpose ETREAT, from Started until
// Expires (at most four hours).
type BreakGlass struct {
	Reason  string
	Started time.Time
	Expires time.Time
}

// Claimed reports whether the request carries a break-glass at all.
func (b BreakGlass) Claimed() bool {
	return b.Reason != "" || !b.Started.IsZero() || !b.Expires.IsZero()
}

// Grant scopes.
const (
	// ScopePatientData lets the holder of a grant see patient data in the
	// systems the grant names.
	ScopePatientData = "patient-data"
	// ScopeSystem covers work on a system without patient data.
	ScopeSystem = "system"
)

// Grant is a time-boxed grant from authority management (external
// maintainers, IT administrators).
type Grant struct {
	ID     string
	Scopes []string
	// Systems the grant covers (SystemEMR, SystemOCS, ...; "*" for all). An
	// empty list covers none.
	Systems []string
	// Patients the grant covers by ID; empty means every patient of those
	// systems.
	Patients    []string
	From, Until time.Time
}

func (g Grant) covers(system, patient string) bool {
	return containsString(g.Systems, system, "*") &&
		(len(g.Patients) == 0 || containsString(g.Patients, patient, ""))
}

func (g Grant) validAt(now time.Time) bool {
	return !now.Before(g.From) && now.Before(g.Until)
}

func (g Grant) hasScope(scope string) bool {
	return containsString(g.Scopes, scope, "")
}

// containsString reports whether list holds want, or holds wildcard when
// wildcard is not empty.
func containsString(list []string, want, wildcard string) bool {
	for _, s := range list {
		if s == want || (wildcard != "" && s == wildcard) {
			return true
		}
	}
	return false
}

// coveringGrant picks the grant the policy should judge: of the grants that
// cover this system and patient, one valid now and scoped to patient data if
// there is one, else one valid now, else the one that ended last. The policy
// itself checks validity and scope, so this choice only makes sure a usable
// grant is not hidden behind an unusable one.
func coveringGrant(grants []Grant, system, patient string, now time.Time) (Grant, bool) {
	best, rank := Grant{}, 0
	for _, g := range grants {
		if !g.covers(system, patient) {
			continue
		}
		r := grantRank(g, now)
		if r > rank || (r == rank && g.Until.After(best.Until)) {
			best, rank = g, r
		}
	}
	return best, rank > 0
}

func grantRank(g Grant, now time.Time) int {
	switch {
	case g.validAt(now) && g.hasScope(ScopePatientData):
		return 3
	case g.validAt(now):
		return 2
	}
	return 1
}
