package tabular

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// Risk is the re-identification risk of a table under the three attacker
// models of El Emam: the prosecutor knows the target is in the table, the
// journalist links to a population table without knowing who is in the
// sample, the marketer tries to re-identify as many records as possible.
type Risk struct {
	Records int // records measured
	Classes int // equivalence classes over the quasi-identifiers
	// ProsecutorMax is 1 / the smallest class; ProsecutorAvg the expected
	// share of records a prosecutor re-identifies (classes / records).
	ProsecutorMax, ProsecutorAvg float64
	// JournalistMax is 1 / the smallest matching population class;
	// JournalistAvg is the mean over records of 1 / population class size.
	// Without a population they equal the prosecutor figures.
	JournalistMax, JournalistAvg float64
	// Marketer is the expected share of records re-identified by linking
	// every record (1/n Σ f/F); an average by nature, it has no maximum.
	Marketer float64
	// Threshold is the risk above which a record counts as at risk; AtRisk
	// the share of records whose prosecutor risk is above it.
	Threshold float64
	AtRisk    float64
	// Drivers, filled when ProsecutorMax is above Threshold, say how the
	// risk would fall without each quasi-identifier, most effective first.
	Drivers []Driver `json:",omitempty"`
}

// Driver is the prosecutor risk with one quasi-identifier left out.
type Driver struct {
	QI                           string
	ProsecutorMax, ProsecutorAvg float64
	AtRisk                       float64
}

// RiskOptions tunes MeasureRisk.
type RiskOptions struct {
	// Population, when given, is the table a journalist links against; it
	// must hold the quasi-identifier columns, generalized like the sample.
	Population *Table
	// Threshold is the risk above which a record is at risk (default 0.2).
	Threshold float64
}

// RiskError is returned when a de-identified table is above the spec's risk
// limit; it names the quasi-identifiers that drive the risk.
type RiskError struct {
	Risk  Risk
	Limit float64
}

func (e *RiskError) Error() string {
	var drivers []string
	for _, d := range e.Risk.Drivers {
		drivers = append(drivers, fmt.Sprintf("%s (without it %.3f)", d.QI, d.ProsecutorMax))
	}
	msg := fmt.Sprintf("highest prosecutor risk %.3f is above the limit %.3f", e.Risk.ProsecutorMax, e.Limit)
	if len(drivers) > 0 {
		msg += "; driven by " + strings.Join(drivers, ", ")
	}
	return msg
}

func (e *RiskError) Unwrap() error { return ErrRiskTooHigh }

// MeasureRisk measures the re-identification risk of t over the named
// quasi-identifiers, as the table stands (no generalization).
func MeasureRisk(t *Table, qis []string, opt RiskOptions) (Risk, error) {
	if t == nil || len(t.Rows) == 0 {
		return Risk{}, fmt.Errorf("measure risk: the table has no rows: %w", ErrEmpty)
	}
	if len(qis) == 0 {
		return Risk{}, fmt.Errorf("measure risk: no quasi-identifiers named: %w", ErrSpec)
	}
	if opt.Threshold == 0 {
		opt.Threshold = 0.2
	}
	m, err := newRiskCodes(t, opt.Population, qis)
	if err != nil {
		return Risk{}, fmt.Errorf("measure risk: %w", err)
	}
	r := m.risk(nil, opt.Threshold)
	if r.ProsecutorMax > opt.Threshold {
		r.Drivers = m.drivers(opt.Threshold)
	}
	return r, nil
}

// riskCodes holds the quasi-identifiers of the sample rows followed by the
// population rows, encoded with shared dictionaries so equal values match.
type riskCodes struct {
	names   []string
	ids     [][]uint32
	width   []uint
	sample  int
	hasPop  bool
	ht      keyTable
	keys    []uint64
	counts  []int64 // per class: sample records
	popCnts []int64 // per class: population records
}

func newRiskCodes(t, pop *Table, qis []string) (*riskCodes, error) {
	m := &riskCodes{names: qis, sample: len(t.Rows), hasPop: pop != nil}
	total := len(t.Rows)
	if pop != nil {
		total += len(pop.Rows)
	}
	for _, name := range qis {
		ids, n, err := encodeRiskColumn(t, pop, name, total)
		if err != nil {
			return nil, err
		}
		m.ids = append(m.ids, ids)
		m.width = append(m.width, uint(bits.Len32(uint32(max(n-1, 0)))))
	}
	m.keys = make([]uint64, total)
	return m, nil
}

func encodeRiskColumn(t, pop *Table, name string, total int) ([]uint32, int, error) {
	ids := make([]uint32, 0, total)
	dict := make(map[string]uint32)
	for _, tab := range []*Table{t, pop} {
		if tab == nil {
			continue
		}
		i := tab.Index(name)
		if i < 0 {
			return nil, 0, fmt.Errorf("no column %q: %w", name, ErrSpec)
		}
		for _, row := range tab.Rows {
			id, ok := dict[row[i]]
			if !ok {
				id = uint32(len(dict))
				dict[row[i]] = id
			}
			ids = append(ids, id)
		}
	}
	return ids, len(dict), nil
}

// group counts classes over all quasi-identifiers but skip, filling counts
// and popCnts; it returns the number of classes.
func (m *riskCodes) group(skip map[int]bool) int {
	clear(m.keys)
	var used uint
	for q, ids := range m.ids {
		if skip[q] || m.width[q] == 0 {
			continue
		}
		if used+m.width[q] > 64 {
			used = m.densify()
		}
		for i, id := range ids {
			m.keys[i] |= uint64(id) << used
		}
		used += m.width[q]
	}
	m.ht.reset(m.sample)
	m.counts, m.popCnts = m.counts[:0], m.popCnts[:0]
	for i, k := range m.keys {
		c := m.ht.id(k)
		if int(c) == len(m.counts) {
			m.counts, m.popCnts = append(m.counts, 0), append(m.popCnts, 0)
		}
		if i < m.sample {
			m.counts[c]++
		} else {
			m.popCnts[c]++
		}
	}
	return len(m.counts)
}

func (m *riskCodes) densify() uint {
	m.ht.reset(len(m.keys))
	for i, k := range m.keys {
		m.keys[i] = uint64(m.ht.id(k))
	}
	return uint(bits.Len32(uint32(m.ht.n)))
}

// risk computes the figures with the quasi-identifiers in skip left out.
func (m *riskCodes) risk(skip map[int]bool, threshold float64) Risk {
	m.group(skip)
	r := Risk{Records: m.sample, Threshold: threshold}
	n := float64(m.sample)
	minF, minPop := int64(-1), int64(-1)
	var atRisk int64
	for c, f := range m.counts {
		if f == 0 {
			continue // a population-only class
		}
		r.Classes++
		F := f
		if m.hasPop {
			F = max(m.popCnts[c], f)
		}
		if minF < 0 || f < minF {
			minF = f
		}
		if minPop < 0 || F < minPop {
			minPop = F
		}
		r.JournalistAvg += float64(f) / float64(F)
		if 1/float64(f) > threshold {
			atRisk += f
		}
	}
	r.ProsecutorMax = 1 / float64(minF)
	r.ProsecutorAvg = float64(r.Classes) / n
	r.JournalistMax = 1 / float64(minPop)
	r.JournalistAvg /= n
	r.Marketer = r.JournalistAvg
	r.AtRisk = float64(atRisk) / n
	return r
}

// drivers measures the risk without each quasi-identifier in turn and sorts
// them so the one whose removal lowers the risk most comes first.
func (m *riskCodes) drivers(threshold float64) []Driver {
	out := make([]Driver, len(m.names))
	for q, name := range m.names {
		r := m.risk(map[int]bool{q: true}, threshold)
		out[q] = Driver{QI: name, ProsecutorMax: r.ProsecutorMax, ProsecutorAvg: r.ProsecutorAvg, AtRisk: r.AtRisk}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].AtRisk != out[b].AtRisk {
			return out[a].AtRisk < out[b].AtRisk
		}
		if out[a].ProsecutorAvg != out[b].ProsecutorAvg {
			return out[a].ProsecutorAvg < out[b].ProsecutorAvg
		}
		return out[a].ProsecutorMax < out[b].ProsecutorMax
	})
	return out
}
