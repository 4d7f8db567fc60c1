package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/records"
)

// checkAccess asks the one door, under the shipped Cedar policy, the four
// questions of issue 4 and reports what it answered: a nurse outside her
// ward, the attending physician, a break-glass by that nurse, and a
// researcher for a patient who gave no research consent.
func (s *scenario) checkAccess(ctx context.Context) error {
	p := s.patient[0]
	try := func(user, purpose, breakGlass string) string {
		req := records.Request{Who: s.staff[user], Purpose: purpose, BreakGlass: breakGlass}
		_, err := s.h.Door.Records(ctx, req, p.ID, records.Filter{Class: records.ClassObservation})
		switch {
		case errors.Is(err, records.ErrDenied):
			return "deny"
		case err != nil:
			return "error: " + err.Error()
		case breakGlass != "" && s.flaggedForReview(ctx, user):
			return "allow-flagged"
		}
		return "allow"
	}
	s.rep.Access = map[string]string{
		"nurse_other_ward":      try("nurse.park", "TREAT", ""),
		"physician_own_patient": try("dr.kim", "TREAT", ""),
		"break_glass":           try("nurse.park", "ETREAT", "patient collapsed on the corridor of ward 5A"),
		"researcher_no_consent": try("researcher.choi", "HRESCH", ""),
	}
	s.opt.Log("access under the shipped policy: nurse outside her ward %s, attending physician %s, break-glass %s, researcher without consent %s",
		s.rep.Access["nurse_other_ward"], s.rep.Access["physician_own_patient"], s.rep.Access["break_glass"], s.rep.Access["researcher_no_consent"])
	want := map[string]string{"nurse_other_ward": "deny", "physician_own_patient": "allow", "break_glass": "allow-flagged", "researcher_no_consent": "deny"}
	for k, v := range want {
		if s.rep.Access[k] != v {
			return fmt.Errorf("%w: %s was %s, want %s", errStep, k, s.rep.Access[k], v)
		}
	}
	return nil
}

// flaggedForReview: the user's last read carries the break-glass and review
// flags, and a break-glass alert waits in the security officer's inbox.
func (s *scenario) flaggedForReview(ctx context.Context, user string) bool {
	var last audit.Event
	audit.Scan(ctx, s.h.DB, s.h.Audit.Chain(), 0, 0, func(e audit.Event) error {
		if e.Actor == s.staff[user].ID && e.Action == "observation.read" {
			last = e
		}
		return nil
	})
	open, err := s.h.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindBreakGlass})
	return err == nil && len(open) > 0 && slices.Contains(last.Flags, "break-glass") && slices.Contains(last.Flags, "review")
}
