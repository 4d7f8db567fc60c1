package dataset

import (
	"context"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/lifecycle"
)

// The dataset register is a lifecycle.Source: `medsec trace --patient`
// lists the AI datasets a patient's data went into, and an erasure tells
// the AI team which datasets to rebuild (lifecycle.Eraser).

// AlertStale is the kind of the alert raised when an erased patient is in
// a dataset.
const AlertStale = "dataset-stale"

// Kind is the data map's kind of this source.
func (s *Service) Kind() string { return lifecycle.KindDataset }

// Locations lists the complete datasets the patient is a member of.
func (s *Service) Locations(ctx context.Context, sub lifecycle.Subject) ([]lifecycle.Location, error) {
	ins, rows, err := s.datasetsOf(ctx, sub.Pseudonym)
	if err != nil {
		return nil, err
	}
	out := make([]lifecycle.Location, 0, len(ins))
	for i, in := range ins {
		out = append(out, s.location(ctx, in, rows[i], sub.Pseudonym))
	}
	return out, nil
}

func (s *Service) location(ctx context.Context, in Info, rows int, pseudonym string) lifecycle.Location {
	l := lifecycle.Location{Kind: lifecycle.KindDataset, Place: fmt.Sprintf("dataset %s (%s, %s)", in.ID, in.Name, in.Purpose),
		Holder: "AI team (" + in.CreatedBy + ")", Count: rows, Stage: lifecycle.StageProvision, Since: in.Completed}
	l.State = fmt.Sprintf("de-identified (k=%d), %d of its %d rows; lineage sealed in the hospital", in.K, rows, in.Rows)
	st, err := s.cfg.Door.ResearchStandings(ctx, in.Purpose, in.Classes, []string{pseudonym}, s.cfg.Now())
	if err == nil && len(st) == 1 && st[0].Stale() {
		why := "consent withdrawn"
		if st[0].Erased {
			why = "patient erased"
		}
		l.State = fmt.Sprintf("STALE (%s): rebuild the dataset without this patient; %d of its %d rows", why, rows, in.Rows)
	}
	return l
}

// datasetsOf returns the complete datasets with the member and the
// member's row counts.
func (s *Service) datasetsOf(ctx context.Context, pseudonym string) ([]Info, []int, error) {
	q, err := s.cfg.DB.Query(ctx, `SELECT dataset_id, rows_count FROM dataset_members WHERE patient = ? ORDER BY dataset_id`, pseudonym)
	if err != nil {
		return nil, nil, fmt.Errorf("datasets of %s: %w", pseudonym, err)
	}
	type hit struct {
		id   string
		rows int
	}
	var hits []hit
	for q.Next() {
		var h hit
		if err := q.Scan(&h.id, &h.rows); err != nil {
			q.Close()
			return nil, nil, err
		}
		hits = append(hits, h)
	}
	q.Close()
	var ins []Info
	var rows []int
	for _, h := range hits {
		in, err := s.Get(ctx, h.id)
		if err != nil {
			return nil, nil, err
		}
		if in.State == StateComplete {
			ins, rows = append(ins, in), append(rows, h.rows)
		}
	}
	return ins, rows, nil
}

// Erase is told of a patient's erasure. The dataset files are outside the
// hospital's reach (with the AI team), so it raises an alert per dataset
// that includes the patient, for the team to rebuild it, and returns
// those datasets as copies still outside. The patient's lineage needs no
// action: it was sealed with their data key and is shredded with it.
func (s *Service) Erase(ctx context.Context, sub lifecycle.Subject, basis string) ([]lifecycle.Location, error) {
	ins, rows, err := s.datasetsOf(ctx, sub.Pseudonym)
	if err != nil {
		return nil, err
	}
	out := make([]lifecycle.Location, 0, len(ins))
	for i, in := range ins {
		l := s.location(ctx, in, rows[i], sub.Pseudonym)
		l.State = fmt.Sprintf("erasure (%s): rebuild the dataset without this patient (%d of its %d rows)", basis, rows[i], in.Rows)
		out = append(out, l)
		if err := s.alertRebuild(ctx, in, sub.Pseudonym); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *Service) alertRebuild(ctx context.Context, in Info, pseudonym string) error {
	if s.cfg.Alerts == nil {
		return nil
	}
	_, err := s.cfg.Alerts.Raise(ctx, s.cfg.DB, alerts.Alert{Kind: AlertStale, Severity: alerts.Warning, Subject: in.ID, Patient: pseudonym,
		Summary: fmt.Sprintf("dataset %s (%s) includes an erased patient: rebuild it without them", in.ID, in.Name),
		Detail:  fmt.Sprintf("created by %s on %s for %s; `medsec dataset list --stale` lists every stale dataset", in.CreatedBy, in.Created.UTC().Format(time.DateOnly), in.Purpose),
		Dedup:   "dataset-stale/" + in.ID + "/" + pseudonym})
	return err
}

var (
	_ lifecycle.Source = (*Service)(nil)
	_ lifecycle.Eraser = (*Service)(nil)
)
