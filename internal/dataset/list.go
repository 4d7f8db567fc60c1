package dataset

import (
	"context"
	"fmt"
)

// List returns the registered datasets, oldest first. With stale set it
// returns only complete datasets that include a patient who has since
// withdrawn the consent the dataset relied on or been erased, each with
// those members: the datasets the AI team must rebuild.
func (s *Service) List(ctx context.Context, stale bool) ([]Info, error) {
	all, err := s.listInfo(ctx, "")
	if err != nil || !stale {
		return all, err
	}
	var out []Info
	for _, in := range all {
		if in.State != StateComplete {
			continue
		}
		if in.Stale, err = s.staleMembers(ctx, in); err != nil {
			return nil, err
		}
		if len(in.Stale) > 0 {
			out = append(out, in)
		}
	}
	return out, nil
}

func (s *Service) staleMembers(ctx context.Context, in Info) ([]StaleMember, error) {
	ms, err := s.members(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := s.cfg.Door.ResearchStandings(ctx, in.Purpose, in.Classes, ms, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("standing of the members of %s: %w", in.ID, err)
	}
	var out []StaleMember
	for _, m := range st {
		switch {
		case m.Erased:
			out = append(out, StaleMember{Patient: m.Pseudonym, Reason: "erased", Since: m.Since})
		case m.Withdrawn:
			out = append(out, StaleMember{Patient: m.Pseudonym, Reason: "consent withdrawn", Since: m.Since})
		}
	}
	return out, nil
}
