package access

import (
	"fmt"
	"slices"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// checkSchemaFitsRequests makes sure a schema (the shipped one or a
// hospital's override) describes what toCedar builds: every role, purpose,
// data class, label and action medsec can send, and the shape of the
// entities and context. Otherwise policies would validate against a schema
// that the real requests do not match, and fail at decision time.
func checkSchemaFitsRequests(rs *resolved.Schema, file string) error {
	fail := func(format string, args ...any) error {
		return &PolicyError{File: file, Reason: "the schema does not describe the requests medsec builds: " + fmt.Sprintf(format, args...)}
	}
	for _, v := range enumVocabularies() {
		enum, ok := rs.Enums[v.typ]
		if !ok {
			return fail("enum entity type %s is missing", v.typ)
		}
		for _, id := range v.ids {
			if !slices.Contains(enum.Values, types.NewEntityUID(v.typ, types.String(id))) {
				return fail("enum %s lacks %q", v.typ, id)
			}
		}
	}
	val := validate.New(rs)
	for _, r := range probeRequests() {
		c := toCedar(&r)
		for _, ent := range []types.Entity{c.staff, c.patient} {
			if err := val.Entity(ent); err != nil {
				return fail("entity %s: %v", ent.UID.Type, err)
			}
		}
		if err := val.Request(c.req); err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

type enumVocabulary struct {
	typ types.EntityType
	ids []string
}

func enumVocabularies() []enumVocabulary {
	purposeIDs := make([]string, len(purposes))
	for i, p := range purposes {
		purposeIDs[i] = string(p.Code)
	}
	return []enumVocabulary{
		{typeRole, stringsOf(roles)},
		{typePurpose, purposeIDs},
		{typeDataClass, stringsOf(dataClasses)},
		{typeLabel, stringsOf(labels)},
	}
}

func stringsOf[S ~string](vs []S) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// probeRequests are requests that exercise every attribute toCedar can
// produce: one with everything set, one with every optional part empty, for
// every action.
func probeRequests() []Request {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	full := Request{
		Staff: Staff{ID: "s1", Role: Nurse, Department: "d", Position: "p", Wards: []string{"w"}, MFA: true},
		Patient: Patient{
			ID: "p1", Department: "d", Ward: "w", Attending: "s2", CareTeam: []string{"s1"},
			ActiveEncounter: true, Labels: []Label{VIP},
			Consents: []Consent{{Purpose: Research, Permit: true}, {Purpose: Payment}},
		},
		DataClass:  Note,
		Purpose:    EmergencyTreatment,
		BreakGlass: BreakGlass{Reason: "r", Started: now, Expires: now.Add(time.Hour)},
		Grants:     []Grant{{Scopes: []string{ScopePatientData}, Systems: []string{"*"}, From: now, Until: now.Add(time.Hour)}},
		LegalBasis: "l", SameSurname: true, CoWorker: true,
		Now: now,
	}
	empty := Request{Staff: Staff{ID: "s1", Role: Physician}, Patient: Patient{ID: "p1"}, DataClass: Audit, Purpose: Treatment, Now: now}
	var out []Request
	for _, a := range actions {
		full.Action, empty.Action = a, a
		out = append(out, full, empty)
	}
	return out
}
