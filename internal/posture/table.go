package posture

import (
	"fmt"
	"slices"

	"github.com/medsec/medsec/internal/config"
)

// location is one of the paper's eleven information-flow locations
// (Table 4) with its security requirements.
type location struct {
	n            int
	place, stage string
	// inUse says whether the profile's capabilities use the location.
	inUse func(config.Capabilities) bool
	reqs  []need
}

// need is one requirement and the controls (by id) that meet it.
type need struct {
	name     string
	controls []string
}

func always(config.Capabilities) bool { return true }

func phd(c config.Capabilities) bool { return c.PHDSecurity || c.PHDAuth || c.SecurityGateway }

// Requirement names in the words of Table 4; the two marked (Table 3)
// come from the paper's management and technology requirements.
var (
	encryption     = need{"Information encryption", []string{"key-file", "data-directory"}}
	malware        = need{"Malicious code prevention/treatment", []string{"malware-screen"}}
	accessControl  = need{"Access control", []string{"access-policy"}}
	identification = need{"User identification", []string{"staff-auth", "privileged-mfa"}}
	authority      = need{"Right of authority", []string{"grant-approvals", "maintainer-timebox"}}
	traceability   = need{"Responsible traceability (Table 3)", []string{"audit-verified", "audit-checkpoint"}}
	outbound       = need{"Information encryption", []string{"sealed-packages", "tls"}}
	receipts       = need{"Destruction of copies given out (Table 3)", []string{"destruction-receipts"}}
)

// locations is Table 4 of the paper.
var locations = []location{
	{1, "Personal health device (PHD, IoT)", "create/collect", func(c config.Capabilities) bool { return c.PHDSecurity || c.PHDAuth }, []need{
		{"User identification", []string{"device-ca"}},
		{"Security protocol", []string{"phd-envelope", "tls"}}}},
	{2, "Mobile / security gateway", "create/collect", func(c config.Capabilities) bool { return c.SecurityGateway }, []need{
		{"Security gateway", []string{"gateway-enrolled"}},
		{"Security protocol (network)", []string{"tls"}}}},
	{3, "Healthcare data server", "store/process", phd, []need{encryption, malware}},
	{4, "HIS (OCS, EMR)", "create/collect, store/process, provide/use, destroy", always, []need{
		encryption, malware, accessControl, identification, authority,
		{"Document security", []string{"document-export"}}, traceability,
		{"Destruction when retention ends (Table 3)", []string{"retention", "backup-shredding"}}}},
	{5, "PACS", "create/collect", func(c config.Capabilities) bool { return c.PACS }, []need{
		malware, {"User identification", []string{"staff-auth"}},
		{"Anonymous/non-identification", []string{"deidentification"}}}},
	{6, "Main server", "store/process, provide/use", always, []need{encryption, malware, accessControl, identification, authority, traceability}},
	{7, "Patients on site (waiting areas)", "provide/use", always, []need{{"Anonymous/non-identification", []string{"display-masking"}}}},
	{8, "Pharmacy / pharmaceutical company (OCS)", "provide/use, destroy", always, []need{outbound, receipts}},
	{9, "Patients (outside the hospital)", "provide/use", always, []need{{"Non-identification", []string{"portal-own-data", "tls"}}}},
	{10, "Other hospitals", "provide/use, destroy", always, []need{outbound, receipts}},
	{11, "External agencies", "provide/use, destroy", always, []need{outbound, receipts}},
}

// Locations lists the eleven locations with their life-cycle stages (the
// console's map).
func Locations() []struct {
	N            int
	Place, Stage string
} {
	out := make([]struct {
		N            int
		Place, Stage string
	}, len(locations))
	for i, l := range locations {
		out[i].N, out[i].Place, out[i].Stage = l.n, l.place, l.stage
	}
	return out
}

// requirements evaluates Table 4 against the findings.
func requirements(r *Report, caps config.Capabilities) []Requirement {
	var out []Requirement
	for _, l := range locations {
		for _, n := range l.reqs {
			q := Requirement{Location: l.n, Place: l.place, Stage: l.stage, Requirement: n.name, Controls: n.controls, Required: l.inUse(caps)}
			q.State, q.Reason = judge(r, q)
			out = append(out, q)
		}
	}
	return out
}

// judge gives a requirement's state: off when the profile does not use
// its location; else it fails when any of its controls fails or is
// switched off.
func judge(r *Report, q Requirement) (State, string) {
	if !q.Required {
		return Off, fmt.Sprintf("the %s profile does not use this location", r.Profile)
	}
	for _, id := range q.Controls {
		f, _ := r.Control(id)
		switch f.State {
		case Fail:
			return Fail, f.Name + ": " + f.Reason
		case Off:
			return Fail, f.Name + " is switched off but this location needs it: " + f.Reason
		}
	}
	return Pass, ""
}

// safeguardMap maps the HIPAA Security Rule's technical safeguards and the
// ISO 27799 control areas to the controls that implement them here.
var safeguardMap = []Safeguard{
	{Standard: "HIPAA", Ref: "§164.312(a)(1)", Title: "Access control (unique user identification, emergency access, automatic logoff, encryption)",
		Controls: []string{"access-policy", "staff-auth", "key-file", "data-directory"}},
	{Standard: "HIPAA", Ref: "§164.312(b)", Title: "Audit controls", Controls: []string{"audit-verified", "audit-checkpoint"}},
	{Standard: "HIPAA", Ref: "§164.312(c)(1)", Title: "Integrity", Controls: []string{"audit-checkpoint", "phd-envelope", "sealed-packages"}},
	{Standard: "HIPAA", Ref: "§164.312(d)", Title: "Person or entity authentication", Controls: []string{"staff-auth", "privileged-mfa", "device-ca"}},
	{Standard: "HIPAA", Ref: "§164.312(e)(1)", Title: "Transmission security", Controls: []string{"tls", "gateway-enrolled", "sealed-packages"}},
	{Standard: "ISO 27799", Ref: "8.3", Title: "Media handling and disposal", Controls: []string{"retention", "backup-shredding", "destruction-receipts"}},
	{Standard: "ISO 27799", Ref: "9", Title: "Access control", Controls: []string{"access-policy", "staff-auth", "privileged-mfa", "grant-approvals", "maintainer-timebox"}},
	{Standard: "ISO 27799", Ref: "10", Title: "Cryptography", Controls: []string{"key-file", "data-directory", "sealed-packages"}},
	{Standard: "ISO 27799", Ref: "12.2", Title: "Protection from malware", Controls: []string{"malware-screen"}},
	{Standard: "ISO 27799", Ref: "12.4", Title: "Logging and monitoring", Controls: []string{"audit-verified", "audit-checkpoint"}},
	{Standard: "ISO 27799", Ref: "13", Title: "Communications security", Controls: []string{"tls", "gateway-enrolled", "phd-envelope"}},
	{Standard: "ISO 27799", Ref: "15", Title: "Supplier relationships (external maintenance)", Controls: []string{"maintainer-timebox"}},
	{Standard: "ISO 27799", Ref: "18.1", Title: "Privacy and protection of personally identifiable information",
		Controls: []string{"display-masking", "portal-own-data", "deidentification", "document-export"}},
}

// safeguards evaluates the map: a safeguard fails when one of its
// controls in use fails, and is off when none is in use.
func safeguards(r *Report) []Safeguard {
	out := slices.Clone(safeguardMap)
	for i := range out {
		out[i].State = Off
		for _, id := range out[i].Controls {
			f, _ := r.Control(id)
			if f.State == Fail {
				out[i].State = Fail
				break
			}
			if f.State == Pass {
				out[i].State = Pass
			}
		}
	}
	return out
}
