package hospital

import (
	"context"
	"time"

	"github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// policyDecider puts the Cedar engine behind the door: it turns the door's
// question into an access.Request and the engine's decision back.
type policyDecider struct {
	engine *access.Engine
	now    func() time.Time
}

func (p *policyDecider) Decide(_ context.Context, q records.Question) records.Decision {
	r := access.Request{
		Staff: access.Staff{ID: q.Who.ID, Role: access.Role(q.Who.Role), Department: q.Who.Department,
			Position: q.Who.Position, Wards: q.Who.Wards, MFA: q.Who.MFA},
		Action:    access.Action(q.Action),
		DataClass: access.DataClass(q.Class),
		Purpose:   access.Purpose(q.Purpose),
		Now:       p.now(),
	}
	if q.Who.Role == identity.RoleSystem {
		r.Staff.Position = q.Who.Username // the job: ingest, import, lifecycle
	}
	if q.Patient != nil {
		r.Patient = access.Patient{ID: q.Patient.ID, Department: q.Patient.Department, Ward: q.Patient.Ward,
			Attending: q.Patient.Attending, CareTeam: q.Patient.CareTeam, ActiveEncounter: q.Patient.ActiveEncounter}
		for _, l := range q.Patient.Labels {
			r.Patient.Labels = append(r.Patient.Labels, access.Label(l))
		}
	}
	if q.BreakGlass != "" {
		r.BreakGlass = access.BreakGlass{Reason: q.BreakGlass, Started: r.Now, Expires: r.Now.Add(4 * time.Hour)}
	}
	d := p.engine.Decide(r)
	return records.Decision{Allow: d.Allow, Flags: d.Flags, Policies: d.Policies, Reasons: append(d.Reasons, d.Errors...)}
}

// newDecider loads the shipped Cedar policies; a policy that does not
// validate stops start-up with file, line and reason.
func newDecider() (records.Decider, error) {
	e, err := access.LoadShipped()
	if err != nil {
		return nil, err
	}
	return &policyDecider{engine: e, now: time.Now}, nil
}
