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

// cedarRequest is a Request in Cedar's terms: the two entities the
// policies can dereference and the Cedar request. It implements
// types.EntityGetter without a map, since there are only two entities.
type cedarRequest struct {
	staff, patient types.Entity
	req            types.Request
}

// Get returns the principal or the resource; nothing else is known to the
// policies (enum entities need no data).
func (c *cedarRequest) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case c.staff.UID:
		return c.staff, true
	case c.patient.UID:
		return c.patient, true
	}
	return types.Entity{}, false
}

// enumValue holds the enum entity references boxed as types.Value once,
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
	c.req = types.Request{
		Principal: c.staff.UID,
		Action:    types.NewEntityUID(typeAction, types.String(r.Action)),
		Resource:  c.patient.UID,
		Context:   contextRecord(r),
	}
	return c
}

func staffUID(id string) types.EntityUID {
	return types.NewEntityUID(typeStaff, types.String(id))
}

func staffEntity(s Staff) types.Entity {
	var buf [4]types.Value
	wards := buf[:0]
	for _, w := range s.Wards {
		wards = append(wards, types.String(w))
	}
	return types.Entity{
		UID: staffUID(s.ID),
		Attributes: types.NewRecord(types.RecordMap{
			"role":       enumRef(typeRole, string(s.Role)),
			"department": types.String(s.Department),
			"position":   types.String(s.Position),
			"wards":      setOf(wards),
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

// setOf builds a Cedar set; the small buffers callers pass stay on the
// stack, and an empty set costs nothing.
func setOf(vs []types.Value) types.Set {
	if len(vs) == 0 {
		return types.Set{}
	}
	return types.NewSet(vs...)
}

func staffSet(ids []string) types.Set {
	var buf [8]types.Value
	vs := buf[:0]
	for _, id := range ids {
		vs = append(vs, staffUID(id))
	}
	return setOf(vs)
}

func labelSet(ls []Label) types.Set {
	var buf [8]types.Value
	vs := buf[:0]
	for _, l := range ls {
		vs = append(vs, enumRef(typeLabel, string(l)))
	}
	return setOf(vs)
}

// consentSets returns the purposes the consents in force permit and deny for
// this data class.
func consentSets(cs []Consent, class DataClass, now time.Time) (permits, denies types.Set) {
	var pbuf, dbuf [8]types.Value
	p, d := pbuf[:0], dbuf[:0]
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
	return setOf(p), setOf(d)
}

func contextRecord(r *Request) types.Record {
	return types.NewRecord(types.RecordMap{
		"data_class":   enumRef(typeDataClass, string(r.DataClass)),
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
	var buf [4]types.Value
	scopes := buf[:0]
	for _, s := range g.Scopes {
		scopes = append(scopes, types.String(s))
	}
	return types.NewRecord(types.RecordMap{
		"covers": types.Boolean(ok),
		"scopes": setOf(scopes),
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
