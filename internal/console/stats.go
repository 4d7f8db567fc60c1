package console

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
)

// stats counts the audit log's events by hour for the overview's rates
// and charts. It reads the log once and then only the events appended
// since the last look, so an overview costs little on a long log.
type stats struct {
	h  *hospital.Hospital
	mu sync.Mutex
	// next is the index of the next event to read.
	next uint64
	// ingest and access count events per hour (Unix hour); byActor counts
	// a member of staff's accesses to patient data per day.
	ingest, access map[int64]int
	byActor        map[int64]map[string]int
	oldest         int64 // the oldest hour kept
}

// keepHours bounds the counts kept in memory: thirty days.
const keepHours = 30 * 24

// firstLook caps how far back the first look reads on a long log.
const firstLook = 500_000

func newStats(h *hospital.Hospital) *stats {
	return &stats{h: h, ingest: map[int64]int{}, access: map[int64]int{}, byActor: map[int64]map[string]int{}}
}

// snapshot brings the counts up to date and returns a copy, with the log's
// size.
type snapshot struct {
	Events         uint64
	Ingest, Access map[int64]int
	ByActor        map[int64]map[string]int
}

func (s *stats) update(ctx context.Context, now time.Time) (snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp, err := s.h.Audit.Checkpoint(ctx) // also the head's size
	if err != nil {
		return snapshot{}, err
	}
	if s.next == 0 && cp.Size > firstLook {
		s.next = cp.Size - firstLook
	}
	err = audit.Scan(ctx, s.h.DB, s.h.Audit.Chain(), s.next, 0, func(e audit.Event) error {
		s.count(e)
		s.next = e.Index + 1
		return nil
	})
	if err != nil {
		return snapshot{}, err
	}
	s.forget(now)
	return s.copy(), nil
}

func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

// count adds one event: device data stored by the ingestion job, and
// accesses to patient data by staff (reads, searches, exports, writes).
func (s *stats) count(e audit.Event) {
	h := hourOf(e.Time)
	switch {
	case e.Actor == "system:ingest" && strings.HasSuffix(e.Action, ".write") && e.Outcome == audit.Success:
		s.ingest[h]++
	case e.Patient != "" && strings.HasPrefix(e.Actor, "st_"):
		s.access[h]++
		day := h / 24
		if s.byActor[day] == nil {
			s.byActor[day] = map[string]int{}
		}
		s.byActor[day][e.Actor]++
	}
}

func (s *stats) forget(now time.Time) {
	cut := hourOf(now) - keepHours
	if cut <= s.oldest {
		return
	}
	for _, m := range []map[int64]int{s.ingest, s.access} {
		for h := range m {
			if h < cut {
				delete(m, h)
			}
		}
	}
	for d := range s.byActor {
		if d < cut/24 {
			delete(s.byActor, d)
		}
	}
	s.oldest = cut
}

func (s *stats) copy() snapshot {
	out := snapshot{Events: s.next, Ingest: map[int64]int{}, Access: map[int64]int{}, ByActor: map[int64]map[string]int{}}
	for h, n := range s.ingest {
		out.Ingest[h] = n
	}
	for h, n := range s.access {
		out.Access[h] = n
	}
	for d, m := range s.byActor {
		out.ByActor[d] = map[string]int{}
		for a, n := range m {
			out.ByActor[d][a] = n
		}
	}
	return out
}

// sum adds the counts of the hours in [from, to).
func sum(m map[int64]int, from, to int64) int {
	n := 0
	for h := from; h < to; h++ {
		n += m[h]
	}
	return n
}
