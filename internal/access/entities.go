package access

import (
	"strings"
	"sync"
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
	m := recordMap()
	m["role"] = enumRef(typeRole, string(s.Role))
	m["department"] = types.String(s.Department)
	m["position"] = types.String(s.Position)
	m["wards"] = setOf(wards)
	m["mfa"] = types.Boolean(s.MFA)
	return types.Entity{UID: staffUID(s.ID), Attributes: newRecord(m)}
}

func patientEntity(r *Request) types.Entity {
	p := r.Patient
	attrs := recordMap()
	attrs["department"] = types.String(p.Department)
	attrs["ward"] = types.String(p.Ward)
	attrs["care_team"] = staffSet(p.CareTeam)
	attrs["active_encounter"] = types.Boolean(p.ActiveEncounter)
	attrs["labels"] = labelSet(p.Labels)
	if p.Attending != "" {
		attrs["attending"] = staffUID(p.Attending)
	}
	attrs["consent_permits"], attrs["consent_denies"] = consentSets(p.Consents, r.DataClass, r.Now)
	return types.Entity{
		UID:        types.NewEntityUID(typePatient, types.String(p.ID)),
		Attributes: newRecord(attrs),
	}
}

// recordMaps pools the maps Cedar records are built from: types.NewRecord
// copies its map, so the one filled for it can be cleared and filled again.
var recordMaps = sync.Pool{New: func() any { return make(types.RecordMap, 8) }}

func recordMap() types.RecordMap { return recordMaps.Get().(types.RecordMap) }

// newRecord makes the record of m and returns m to the pool.
func newRecord(m types.RecordMap) types.Record {
	r := types.NewRecord(m)
	clear(m)
	recordMaps.Put(m)
	return r
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
	m := recordMap()
	m["data_class"] = enumRef(typeDataClass, string(r.DataClass))
	m["purpose"] = enumRef(typePurpose, string(r.Purpose))
	m["now"] = types.NewDatetime(r.Now)
	m["break_glass"] = contextBreakGlass(r.BreakGlass)
	m["grant"] = grantRecord(r)
	m["legal_basis"] = types.String(strings.TrimSpace(r.LegalBasis))
	m["same_surname"] = types.Boolean(r.SameSurname)
	m["co_worker"] = types.Boolean(r.CoWorker)
	return newRecord(m)
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
