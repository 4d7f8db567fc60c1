package tabular

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Result is a de-identified table and the account of how it was made.
type Result struct {
	// Table is what may be released: dropped columns gone, identifiers
	// pseudonymized, dates shifted, quasi-identifiers generalized,
	// suppressed records removed (or starred with suppress_as: cells).
	Table *Table
	// RowSource gives, for each output row, the index of its input row: the
	// lineage from a pseudonymized row back to its source, to be sealed and
	// kept inside the hospital.
	RowSource []int
	// Levels is the chosen generalization, one entry per quasi-identifier.
	Levels []QILevel
	// Reached is what the kept records actually satisfy.
	Reached Reached
	// Records is the number of input rows; Suppressed those suppressed.
	Records, Suppressed int
	// Risk is measured on Table as released (with suppress_as: cells the
	// starred rows count as one class of their own).
	Risk   Risk
	Loss   Loss
	Search SearchStats
	// Explanation says in plain sentences what was chosen and why.
	Explanation []string

	recoders  []recoder
	threshold float64
}

// QILevel is the generalization chosen for one quasi-identifier.
type QILevel struct {
	Column string
	Level  int
	Height int
	// Example is one generalized value at that level ("40-49"); empty at
	// level 0, where it would be an original value.
	Example string
}

// Reached is the privacy model the kept records satisfy: the smallest class,
// the fewest distinct sensitive values in a class, the lowest entropy
// diversity (e^H, comparable with l) and the largest earth mover's distance.
type Reached struct {
	K        int
	L        int     `json:",omitempty"`
	EntropyL float64 `json:",omitempty"`
	T        float64 `json:",omitempty"`
}

// Loss measures what the generalization cost the data.
type Loss struct {
	// Discernibility is Σ|E|² over kept classes plus n for each suppressed
	// record (lower is better; n·k at best).
	Discernibility float64
	// AvgClassSize is kept records per kept class; CAvg divides it by k
	// (1 is ideal).
	AvgClassSize, CAvg float64
	// NonUniformEntropy is the bits of information lost over all
	// quasi-identifier cells; EntropyShare divides it by the bits a fully
	// suppressed table would lose.
	NonUniformEntropy, EntropyShare float64
	// Height is the sum of the chosen levels; Precision is Sweeney's
	// precision, 1 minus the average share of each hierarchy climbed.
	Height    int
	Precision float64
}

// recoder applies the chosen level of one quasi-identifier to another table.
type recoder struct {
	column string
	hier   *Hierarchy
	height int
	level  int
}

// Anonymize de-identifies t by spec with the per-dataset secret (needed only
// when the spec pseudonymizes or shifts dates; at least MinSecretLen bytes,
// fresh for each dataset so datasets cannot be linked). It searches the
// generalization lattice for the node that meets the privacy model with at
// most the allowed suppression and the least information loss, then measures
// the risk of the table it produces. It returns ErrUnreachable when no node
// meets the model and a *RiskError (ErrRiskTooHigh), with the result, when
// the result is above spec.MaxRisk. The same table, spec and secret always
// give the same result.
func Anonymize(ctx context.Context, t *Table, spec Spec, secret []byte) (*Result, error) {
	if t == nil || len(t.Rows) == 0 {
		return nil, fmt.Errorf("anonymize: the table has no rows: %w", ErrEmpty)
	}
	spec = spec.withDefaults()
	if err := spec.Validate(t); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	cols, err := transformColumns(t, spec, secret)
	if err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	res := &Result{Records: len(t.Rows), threshold: spec.RiskThreshold}
	kept, starred := allRows(len(t.Rows)), false
	if len(spec.QuasiIdentifiers) > 0 {
		if kept, err = res.generalize(ctx, t, spec, cols); err != nil {
			return nil, fmt.Errorf("anonymize: %w", err)
		}
		starred = spec.SuppressAs == "cells"
	}
	res.Table, res.RowSource = buildOutput(t, spec, cols, kept, starred)
	if err := res.measure(spec); err != nil {
		return nil, fmt.Errorf("anonymize: %w", err)
	}
	if spec.MaxRisk > 0 && res.Risk.ProsecutorMax > spec.MaxRisk {
		return res, &RiskError{Risk: res.Risk, Limit: spec.MaxRisk}
	}
	return res, nil
}

func allRows(n int) []bool {
	kept := make([]bool, n)
	for i := range kept {
		kept[i] = true
	}
	return kept
}

// transformColumns returns the rewritten columns (date-shifted,
// pseudonymized, micro-aggregated) by table index; other columns are read
// from t as they are.
func transformColumns(t *Table, spec Spec, secret []byte) (map[int][]string, error) {
	cols := make(map[int][]string)
	var p *Pseudonymizer
	if len(spec.Pseudonymize) > 0 || spec.DateShift != nil {
		var err error
		if p, err = NewPseudonymizer(secret); err != nil {
			return nil, err
		}
	}
	if d := spec.DateShift; d != nil {
		patients := t.Column(d.PatientColumn)
		for _, c := range d.Columns {
			col := t.Column(c)
			if err := p.shiftColumn(col, patients, c, d); err != nil {
				return nil, err
			}
			cols[t.Index(c)] = col
		}
	}
	for _, c := range spec.Pseudonymize {
		col := t.Column(c)
		p.pseudonymizeColumn(col)
		cols[t.Index(c)] = col
	}
	if m := spec.MicroAggregate; m != nil {
		for _, c := range m.Columns {
			col := t.Column(c)
			if err := microAggregateColumn(col, m.K); err != nil {
				return nil, fmt.Errorf("micro-aggregate %q: %w", c, err)
			}
			cols[t.Index(c)] = col
		}
	}
	return cols, nil
}

// generalize runs the search, writes the chosen generalization into cols and
// returns which rows are kept.
func (res *Result) generalize(ctx context.Context, t *Table, spec Spec, cols map[int][]string) ([]bool, error) {
	e, base, rowEntry, err := prepare(t, spec)
	if err != nil {
		return nil, err
	}
	lat, err := newLattice(e.qis)
	if err != nil {
		return nil, err
	}
	s := newSearcher(ctx, e, lat, base)
	best, found, err := s.run()
	if err != nil {
		return nil, err
	}
	res.Search = s.stats
	if !found {
		return nil, unreachable(e, base, lat)
	}
	levels := lat.levels(best.node)
	ev, classes, _ := e.assess(base, levels, best.node, false)
	kept := make([]bool, len(t.Rows))
	for r, entry := range rowEntry {
		kept[r] = e.kept[e.classOf[entry]]
	}
	res.Suppressed = int(ev.suppressed)
	res.Reached = e.reached(classes)
	res.Loss = e.loss(base, levels, classes)
	res.writeLevels(t, e, levels, cols)
	res.Explanation = explain(spec, e, s.stats, res)
	return kept, nil
}

// prepare encodes the quasi-identifiers and the sensitive attribute and
// groups the records at the lattice's bottom node, the base every node is
// counted from. rowEntry maps each row to its base group.
func prepare(t *Table, spec Spec) (*evaluator, *groupTable, []int32, error) {
	qis := make([]*qiCodes, len(spec.QuasiIdentifiers))
	for i, q := range spec.QuasiIdentifiers {
		c, err := encodeQI(t, q)
		if err != nil {
			return nil, nil, nil, err
		}
		qis[i] = c
	}
	var sens *sensCodes
	if spec.Sensitive != "" {
		var err error
		if sens, err = encodeSensitive(t, spec.Sensitive, spec.TDistance); err != nil {
			return nil, nil, nil, err
		}
	}
	e := newEvaluator(qis, sens, len(t.Rows), spec)
	rows := rowTable(qis, sens, len(t.Rows))
	bottom := make([]int, len(qis))
	for q, c := range qis {
		bottom[q] = c.min
	}
	classes, cells := e.group(rows, bottom)
	base := e.tableOf(rows, bottom, -1, classes, cells)
	rowEntry := append([]int32(nil), e.classOf[:len(t.Rows)]...)
	if sens != nil {
		rowEntry = append(rowEntry[:0], e.cellOf[:len(t.Rows)]...)
	}
	e.chooseFine(base)
	place := e.sortBlocks(base)
	base.rowMajor(qis)
	for r, entry := range rowEntry {
		rowEntry[r] = place[entry]
	}
	return e, base, rowEntry, nil
}

// rowTable views the records as groups of one at level 0.
func rowTable(qis []*qiCodes, sens *sensCodes, n int) *groupTable {
	g := &groupTable{node: -1, levels: make([]int, len(qis)), ids: make([][]uint32, len(qis)), count: make([]int32, n)}
	g.blocks = []block{{lo: 0, hi: int32(n)}}
	for q, c := range qis {
		g.ids[q] = c.row
	}
	if sens != nil {
		g.sens = sens.row
	}
	for i := range g.count {
		g.count[i] = 1
	}
	return g
}

// writeLevels replaces each quasi-identifier column by its generalization and
// records the chosen levels.
func (res *Result) writeLevels(t *Table, e *evaluator, levels []int, cols map[int][]string) {
	for q, c := range e.qis {
		l := levels[q]
		col := make([]string, len(c.row))
		for r, id0 := range c.row {
			col[r] = c.label[l][c.gen[l][id0]]
		}
		cols[t.Index(c.name)] = col
		ql := QILevel{Column: c.name, Level: l, Height: c.height}
		if l > 0 {
			ql.Example = c.label[l][0]
		}
		res.Levels = append(res.Levels, ql)
		res.recoders = append(res.recoders, recoder{column: c.name, hier: c.hier, height: c.height, level: l})
	}
}

// buildOutput assembles the released table: columns in input order without
// the dropped ones, kept rows only (or suppressed rows with starred
// quasi-identifiers).
func buildOutput(t *Table, spec Spec, cols map[int][]string, kept []bool, starred bool) (*Table, []int) {
	drop := make(map[string]bool)
	for _, c := range spec.Drop {
		drop[c] = true
	}
	qi := make(map[int]bool)
	for _, q := range spec.QuasiIdentifiers {
		qi[t.Index(q.Column)] = true
	}
	var idx []int
	out := &Table{}
	for i, c := range t.Columns {
		if !drop[c] {
			idx = append(idx, i)
			out.Columns = append(out.Columns, c)
		}
	}
	rows := len(t.Rows)
	if !starred {
		rows = 0
		for _, k := range kept {
			if k {
				rows++
			}
		}
	}
	// one allocation for all cells: a million small ones keep the
	// collector busy
	all := make([]string, rows*len(idx))
	out.Rows = make([][]string, 0, rows)
	source := make([]int, 0, rows)
	for r, row := range t.Rows {
		if !kept[r] && !starred {
			continue
		}
		cells := all[:len(idx):len(idx)]
		all = all[len(idx):]
		for j, i := range idx {
			switch {
			case !kept[r] && qi[i]:
				cells[j] = Top
			case cols[i] != nil:
				cells[j] = cols[i][r]
			default:
				cells[j] = row[i]
			}
		}
		out.Rows = append(out.Rows, cells)
		source = append(source, r)
	}
	return out, source
}

// measure computes the risk of the released table itself.
func (res *Result) measure(spec Spec) error {
	if len(spec.QuasiIdentifiers) == 0 || len(res.Table.Rows) == 0 {
		return nil
	}
	risk, err := MeasureRisk(res.Table, res.qiNames(), RiskOptions{Threshold: spec.RiskThreshold})
	res.Risk = risk
	return err
}

func (res *Result) qiNames() []string {
	names := make([]string, len(res.recoders))
	for i, r := range res.recoders {
		names[i] = r.column
	}
	return names
}

// Recode applies the chosen generalization to the quasi-identifier columns of
// another table with the same columns, e.g. a population table for
// journalist risk. Other columns are copied as they are.
func (res *Result) Recode(t *Table) (*Table, error) {
	out := &Table{Columns: append([]string(nil), t.Columns...), Rows: make([][]string, len(t.Rows))}
	for r, row := range t.Rows {
		out.Rows[r] = append([]string(nil), row...)
	}
	for _, rc := range res.recoders {
		if err := rc.apply(out); err != nil {
			return nil, fmt.Errorf("recode: %w", err)
		}
	}
	return out, nil
}

func (rc recoder) apply(t *Table) error {
	i := t.Index(rc.column)
	if i < 0 {
		return fmt.Errorf("table has no column %q: %w", rc.column, ErrSpec)
	}
	col := t.Column(rc.column)
	ids, values := dictionaryOf(col)
	chains, err := rc.levels(values)
	if err != nil {
		return valueError(err, rc.column, ids)
	}
	for r, row := range t.Rows {
		row[i] = chains[ids[r]][rc.level]
	}
	return nil
}

func (rc recoder) levels(values []string) ([][]string, error) {
	if rc.hier.fixed != nil {
		return rc.hier.fixed(values, rc.height)
	}
	chains, err := rc.hier.Levels(values)
	if err == nil && len(chains) > 0 && len(chains[0]) != rc.height+1 {
		err = fmt.Errorf("hierarchy gave %d levels, want %d: %w", len(chains[0])-1, rc.height, ErrSpec)
	}
	return chains, err
}

func dictionaryOf(col []string) ([]uint32, []string) {
	return dictionary(&Table{Columns: []string{"v"}, Rows: columnRows(col)}, 0)
}

func columnRows(col []string) [][]string {
	rows := make([][]string, len(col))
	for r := range col {
		rows[r] = col[r : r+1]
	}
	return rows
}

// RiskAgainst measures journalist and marketer risk of the released table
// against a population table (the people an attacker could link against),
// generalized the same way.
func (res *Result) RiskAgainst(population *Table) (Risk, error) {
	pop, err := res.Recode(population)
	if err != nil {
		return Risk{}, err
	}
	return MeasureRisk(res.Table, res.qiNames(), RiskOptions{Population: pop, Threshold: res.threshold})
}

// reached measures the model the kept classes satisfy, after assess.
func (e *evaluator) reached(classes int) Reached {
	r := Reached{K: math.MaxInt, L: math.MaxInt, EntropyL: math.Inf(1)}
	any := false
	for c := range classes {
		if !e.kept[c] {
			continue
		}
		any = true
		r.K = min(r.K, int(e.size[c]))
		if e.sens == nil {
			continue
		}
		own := e.cellOrder[e.cellStart[c]:e.cellStart[c+1]]
		r.L = min(r.L, len(own))
		r.EntropyL = math.Min(r.EntropyL, math.Exp(e.entropy(own, e.size[c])))
		r.T = math.Max(r.T, e.emd(own, e.size[c]))
	}
	if !any {
		return Reached{}
	}
	if e.sens == nil {
		r.L, r.EntropyL = 0, 0
	}
	return r
}

// loss reports every information-loss measure at the chosen node, after
// assess.
func (e *evaluator) loss(src *groupTable, levels []int, classes int) Loss {
	var l Loss
	var keptRecs, keptCls, supp float64
	for c := range classes {
		sz := float64(e.size[c])
		if e.kept[c] {
			l.Discernibility += sz * sz
			keptRecs += sz
			keptCls++
		} else {
			supp += sz
		}
	}
	l.Discernibility += supp * float64(e.n)
	if keptCls > 0 {
		l.AvgClassSize = keptRecs / keptCls
		l.CAvg = l.AvgClassSize / float64(e.spec.K)
	}
	l.NonUniformEntropy, l.EntropyShare = e.entropyAt(src, levels, classes)
	for q, lv := range levels {
		l.Height += lv
		l.Precision += float64(lv) / float64(e.qis[q].height)
	}
	l.Precision = 1 - l.Precision/float64(len(levels))
	return l
}

// entropyAt is the non-uniform entropy at levels with the suppressed classes
// counted as fully generalized, and its share of the most that can be lost.
func (e *evaluator) entropyAt(src *groupTable, levels []int, classes int) (float64, float64) {
	var bits, most float64
	for q, c := range e.qis {
		bits += entropyLoss(c, levels[q])
		most += entropyLoss(c, c.height)
	}
	for c := range classes {
		if e.kept[c] {
			continue
		}
		for q, qc := range e.qis {
			id := qc.levelOf(src.ids[q][e.rep[c]], src.levels[q], levels[q])
			bits += float64(e.size[c]) * math.Log2(float64(e.n)/float64(qc.freq[levels[q]][id]))
		}
	}
	if most == 0 {
		return bits, 0
	}
	return bits, bits / most
}

// unreachable explains the best the model can reach at the most general
// levels the spec allows.
func unreachable(e *evaluator, base *groupTable, lat lattice) error {
	top := lat.levels(lat.size - 1)
	_, classes, _ := e.assess(base, top, lat.size-1, false)
	var want, got []string
	want = append(want, fmt.Sprintf("k=%d", e.spec.K))
	got = append(got, fmt.Sprintf("k=%d", e.reachableK(classes)))
	if e.spec.L > 0 {
		want = append(want, fmt.Sprintf("%s l=%d", e.spec.LMode, e.spec.L))
		got = append(got, fmt.Sprintf("distinct l=%d", e.reachableL(classes)))
	}
	if e.spec.T > 0 {
		want = append(want, fmt.Sprintf("t=%g", e.spec.T))
	}
	return fmt.Errorf("no generalization reaches %s with at most %.1f%% (%d) of %d records suppressed; at the most general levels allowed the best reachable is %s: %w",
		strings.Join(want, ", "), 100*e.spec.MaxSuppression, e.limit, e.n, strings.Join(got, ", "), ErrUnreachable)
}

// reachableK is the largest k whose smaller classes fit in the suppression
// limit, after assess.
func (e *evaluator) reachableK(classes int) int {
	return reachable(e.size[:classes], func(c int) int64 { return e.size[c] }, e.limit)
}

// reachableL is the largest distinct l whose less diverse classes fit in the
// suppression limit, after assess.
func (e *evaluator) reachableL(classes int) int {
	if e.sens == nil {
		return 0
	}
	return reachable(e.size[:classes], func(c int) int64 { return int64(e.cellStart[c+1] - e.cellStart[c]) }, e.limit)
}

// reachable finds the largest value v of score such that the classes scoring
// below v hold at most limit records.
func reachable(sizes []int64, score func(c int) int64, limit int64) int {
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return score(order[a]) < score(order[b]) })
	best := int64(0)
	var below int64
	for i, c := range order {
		if i == 0 || score(c) != score(order[i-1]) {
			if below > limit {
				break
			}
			best = score(c)
		}
		below += sizes[c]
	}
	return int(best)
}
