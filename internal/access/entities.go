package access

import (
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// Cedar entity types of the schema (policies/medsec.cedarschema).
const (
	typeStaff     types.EntityType = "Staff"
	typePatient   types.EntityType = "Patient"
	typeRecord    types.EntityType = "Record"
	typeRole      types.EntityType = "Role"
	typePurpose   types.EntityType = "Purpose"
	typeDataClass types.EntityType = "DataClass"
	typeLabel     types.EntityType = "Label"
	typeAction    types.EntityType = "Action"
)

// epoch stands in for "no time" in the context (no break-glass, no grant),
// because the schema's records have every attribute.
var epoch = types.NewDatetime(time.Unix(0, 0).UTC())

// The context records of a request without break-glass and without a
// covering grant, the common case, built once.
var (
	noBreakGlass = breakGlassRecord(BreakGlass{})
	noGrant      = grantRecordOf(Grant{}, false)
)

// cedarRequest is a Request in Cedar's terms: the three entities the
// policies can dereference and the Cedar request. It implements
// types.EntityGetter without a map, since there are only three entities.
type cedarRequest struct {
	staff, patient, record types.Entity
	req                    types.Request
}

// Get returns the principal, the patient or the resource; nothing else is
// known to the policies (enum entities need no data).
func (c *cedarRequest) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case c.staff.UID:
		return c.staff, true
	case c.patient.UID:
		return c.patient, true
	case c.record.UID:
		return c.record, true
	}
	return types.Entity{}, false
}

// enumValues holds the enum entity references boxed as types.Value once,
// so that building a request does not allocate for them.
var enumValue = func() map[types.EntityType]map[string]types.Value {
	m := map[types.EntityType]map[string]types.Value{}
	for _, v := range enumVocabularies() {
		m[v.typ] = map[string]types.Value{}
		for _, id := range v.ids {
			m[v.typ][id] = types.NewEntityUID(v.typ, types.String(id))
		}
	}
	return m
}()

// enumRef returns the entity reference typ::id, from enumValue when it is a
// known value (checkRequest has made sure it is).
func enumRef(typ types.EntityType, id string) types.Value {
	if v, ok := enumValue[typ][id]; ok {
		return v
	}
	return types.NewEntityUID(typ, types.String(id))
}

func toCedar(r *Request) *cedarRequest {
	c := &cedarRequest{
		staff:   staffEntity(r.Staff),
		patient: patientEntity(r),
	}
	c.record = recordEntity(r, c.patient.UID)
	c.req = types.Request{
		Principal: c.staff.UID,
		Action:    types.NewEntityUID(typeAction, types.String(r.Action)),
		Resource:  c.record.UID,
		Context:   contextRecord(r),
	}
	return c
}

func staffUID(id string) types.EntityUID {
	return types.NewEntityUID(typeStaff, types.String(id))
}

func staffEntity(s Staff) types.Entity {
	wards := make([]types.Value, len(s.Wards))
	for i, w := range s.Wards {
		wards[i] = types.String(w)
	}
	return types.Entity{
		UID: staffUID(s.ID),
		Attributes: types.NewRecord(types.RecordMap{
			"role":       enumRef(typeRole, string(s.Role)),
			"department": types.String(s.Department),
			"position":   types.String(s.Position),
			"wards":      types.NewSet(wards...),
			"mfa":        types.Boolean(s.MFA),
		}),
	}
}

func patientEntity(r *Request) types.Entity {
	p := r.Patient
	attrs := types.RecordMap{
		"department":       types.String(p.Department),
		"ward":             types.String(p.Ward),
		"care_team":        staffSet(p.CareTeam),
		"active_encounter": types.Boolean(p.ActiveEncounter),
		"labels":           labelSet(p.Labels),
	}
	if p.Attending != "" {
		attrs["attending"] = staffUID(p.Attending)
	}
	attrs["consent_permits"], attrs["consent_denies"] = consentSets(p.Consents, r.DataClass, r.Now)
	return types.Entity{
		UID:        types.NewEntityUID(typePatient, types.String(p.ID)),
		Attributes: types.NewRecord(attrs),
	}
}

func staffSet(ids []string) types.Set {
	vs := make([]types.Value, len(ids))
	for i, id := range ids {
		vs[i] = staffUID(id)
	}
	return types.NewSet(vs...)
}

func labelSet(ls []Label) types.Set {
	vs := make([]types.Value, len(ls))
	for i, l := range ls {
		vs[i] = enumRef(typeLabel, string(l))
	}
	return types.NewSet(vs...)
}

// consentSets returns the purposes the consents in force permit and deny for
// this data class.
func consentSets(cs []Consent, class DataClass, now time.Time) (permits, denies types.Set) {
	var p, d []types.Value
	for _, c := range cs {
		if !c.inForce(now) || !c.covers(class) {
			continue
		}
		uid := enumRef(typePurpose, string(c.Purpose))
		if c.Permit {
			p = append(p, uid)
		} else {
			d = append(d, uid)
		}
	}
	return types.NewSet(p...), types.NewSet(d...)
}

func recordEntity(r *Request, patient types.EntityUID) types.Entity {
	return types.Entity{
		// The record is one class of one patient; the patient's ID names it
		// well enough, since only its attributes are read.
		UID: types.NewEntityUID(typeRecord, types.String(r.Patient.ID)),
		Attributes: types.NewRecord(types.RecordMap{
			"patient": patient,
			"class":   enumRef(typeDataClass, string(r.DataClass)),
		}),
	}
}

func contextRecord(r *Request) types.Record {
	return types.NewRecord(types.RecordMap{
		"purpose":      enumRef(typePurpose, string(r.Purpose)),
		"now":          types.NewDatetime(r.Now),
		"break_glass":  contextBreakGlass(r.BreakGlass),
		"grant":        grantRecord(r),
		"legal_basis":  types.String(strings.TrimSpace(r.LegalBasis)),
		"same_surname": types.Boolean(r.SameSurname),
		"co_worker":    types.Boolean(r.CoWorker),
	})
}

func contextBreakGlass(b BreakGlass) types.Record {
	if !b.Claimed() {
		return noBreakGlass
	}
	return breakGlassRecord(b)
}

func breakGlassRecord(b BreakGlass) types.Record {
	return types.NewRecord(types.RecordMap{
		"claimed": types.Boolean(b.Claimed()),
		"reason":  types.String(strings.TrimSpace(b.Reason)),
		"started": datetimeOrEpoch(b.Started),
		"expires": datetimeOrEpoch(b.Expires),
	})
}

func grantRecord(r *Request) types.Record {
	g, ok := coveringGrant(r.Grants, SystemOf(r.DataClass), r.Patient.ID, r.Now)
	if !ok {
		return noGrant
	}
	return grantRecordOf(g, true)
}

func grantRecordOf(g Grant, ok bool) types.Record {
	scopes := make([]types.Value, len(g.Scopes))
	for i, s := range g.Scopes {
		scopes[i] = types.String(s)
	}
	return types.NewRecord(types.RecordMap{
		"covers": types.Boolean(ok),
		"scopes": types.NewSet(scopes...),
		"from":   datetimeOrEpoch(g.From),
		"until":  datetimeOrEpoch(g.Until),
	})
}

func datetimeOrEpoch(t time.Time) types.Datetime {
	if t.IsZero() {
		return epoch
	}
	return types.NewDatetime(t)
}
