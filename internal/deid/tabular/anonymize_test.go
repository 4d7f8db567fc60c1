package tabular

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const testDepartments = "Cardiology;Medical;*\nNeurology;Medical;*\nOrthopedics;Surgical;*\nUrology;Surgical;*\n"

// randomTable makes n rows of patients with skewed values, so that small
// classes, rare sensitive values and unreachable targets all occur.
func randomTable(rng *rand.Rand, n int) *Table {
	t := &Table{Columns: []string{"id", "age", "sex", "zip", "dept", "dx", "los"}}
	depts := []string{"Cardiology", "Neurology", "Orthopedics", "Urology"}
	dxs := []string{"I10", "E11", "J18", "C50", "F32"}
	for i := range n {
		age := 20 + rng.IntN(40) + rng.IntN(40)
		zip := fmt.Sprintf("%02d%d%02d", 1+rng.IntN(3), rng.IntN(4), rng.IntN(8))
		t.Rows = append(t.Rows, []string{
			"P" + strconv.Itoa(i), strconv.Itoa(age), []string{"F", "M"}[rng.IntN(2)], zip,
			depts[rng.IntN(1+rng.IntN(4))], dxs[min(rng.IntN(5), rng.IntN(5))], strconv.Itoa(rng.IntN(4) + rng.IntN(12)),
		})
	}
	return t
}

func randomSpec(rng *rand.Rand) Spec {
	dept, err := ParseHierarchy(strings.NewReader(testDepartments))
	if err != nil {
		panic(err)
	}
	s := Spec{
		QuasiIdentifiers: []QI{
			{Column: "age", Hierarchy: "age"},
			{Column: "sex", Hierarchy: "sex"},
			{Column: "zip", Hierarchy: "zip"},
			{Column: "dept", Custom: dept},
		},
		K:              2 + rng.IntN(5),
		MaxSuppression: []float64{0, 0.03, 0.1, 0.25}[rng.IntN(4)],
		Pseudonymize:   []string{"id"},
		Keep:           []string{"dx", "los"},
	}
	if rng.IntN(4) == 0 {
		s.Metric = MetricPrecision
	}
	switch rng.IntN(5) {
	case 1:
		s.Sensitive, s.L = "dx", 2+rng.IntN(2)
	case 2:
		s.Sensitive, s.L, s.LMode = "dx", 2, LEntropy
	case 3:
		s.Sensitive, s.T = "dx", []float64{0.2, 0.35, 0.5}[rng.IntN(3)]
	case 4:
		s.Sensitive, s.T = "los", []float64{0.1, 0.2, 0.3}[rng.IntN(3)]
	}
	if s.Sensitive != "" {
		s.Keep = []string{"dx", "los"}[:1]
		if s.Sensitive == "dx" {
			s.Keep = []string{"los"}
		}
	}
	return s
}

// oracleNode is a node evaluated by brute force, independently of the
// search's integer encoding: generalized strings grouped in maps.
type oracleNode struct {
	levels     []int
	pass       bool
	suppressed int
	loss       float64
}

func oracle(t *testing.T, tab *Table, spec Spec) []oracleNode {
	t.Helper()
	spec = spec.withDefaults()
	o := oracleData{n: len(tab.Rows), spec: spec}
	for _, qi := range spec.QuasiIdentifiers {
		h, err := qi.hierarchy()
		if err != nil {
			t.Fatal(err)
		}
		chains, err := h.Levels(tab.Column(qi.Column))
		if err != nil {
			t.Fatal(err)
		}
		o.addQI(chains)
	}
	if spec.Sensitive != "" {
		o.sens = tab.Column(spec.Sensitive)
	}
	var out []oracleNode
	for _, levels := range allLevels(o.heights) {
		out = append(out, o.eval(levels))
	}
	return out
}

// oracleData holds each row's generalized values as small integers per
// quasi-identifier and level, and how many rows share each.
type oracleData struct {
	n       int
	spec    Spec
	heights []int
	ids     [][][]int32 // [qi][level][row]
	freq    [][]map[int32]int
	sens    []string
}

func (o *oracleData) addQI(chains [][]string) {
	h := len(chains[0]) - 1
	ids := make([][]int32, h+1)
	freq := make([]map[int32]int, h+1)
	for l := range ids {
		seen := map[string]int32{}
		ids[l], freq[l] = make([]int32, len(chains)), map[int32]int{}
		for r, c := range chains {
			id, ok := seen[c[l]]
			if !ok {
				id = int32(len(seen))
				seen[c[l]] = id
			}
			ids[l][r] = id
			freq[l][id]++
		}
	}
	o.heights, o.ids, o.freq = append(o.heights, h), append(o.ids, ids), append(o.freq, freq)
}

func (o *oracleData) eval(levels []int) oracleNode {
	classes := map[[8]int32][]int{}
	for r := range o.n {
		var key [8]int32
		for q, l := range levels {
			key[q] = o.ids[q][l][r]
		}
		classes[key] = append(classes[key], r)
	}
	node := oracleNode{levels: levels}
	kept := make([]bool, o.n)
	for _, rows := range classes {
		ok := keepClass(o.spec, rows, o.sens)
		for _, r := range rows {
			kept[r] = ok
		}
		if !ok {
			node.suppressed += len(rows)
		}
	}
	node.pass = node.suppressed <= int(math.Floor(o.spec.MaxSuppression*float64(o.n)+1e-9))
	for r := range o.n {
		for q, l := range levels {
			node.loss += o.cellLoss(q, l, r, kept[r], len(levels))
		}
	}
	return node
}

// cellLoss is one cell's information loss: non-uniform entropy (bits) or
// the share of the hierarchy climbed; a suppressed cell is fully generalized.
func (o *oracleData) cellLoss(q, l, r int, kept bool, qis int) float64 {
	if o.spec.Metric == MetricPrecision {
		if !kept {
			return 1 / float64(qis)
		}
		return float64(l) / float64(o.heights[q]) / float64(qis)
	}
	f0 := float64(o.freq[q][0][o.ids[q][0][r]])
	if !kept {
		return math.Log2(float64(o.n) / f0)
	}
	return math.Log2(float64(o.freq[q][l][o.ids[q][l][r]]) / f0)
}

func keepClass(spec Spec, rows []int, sens []string) bool {
	if len(rows) < spec.K {
		return false
	}
	if sens == nil {
		return true
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[sens[r]]++
	}
	if spec.L > 0 && len(counts) < spec.L {
		return false
	}
	if spec.L > 0 && spec.LMode == LEntropy && shannon(counts, len(rows)) < math.Log(float64(spec.L))-1e-9 {
		return false
	}
	return spec.T == 0 || emdOf(counts, len(rows), sens) <= spec.T+1e-12
}

func shannon(counts map[string]int, n int) float64 {
	var h float64
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log(p)
	}
	return h
}

// emdOf is the earth mover's distance of a class to the whole column:
// ordered when every value is a number, equal distance otherwise.
func emdOf(counts map[string]int, n int, all []string) float64 {
	global := globalCounts(all)
	var domain []string
	numeric := true
	for v := range global {
		domain = append(domain, v)
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			numeric = false
		}
	}
	if !numeric {
		var d float64
		for _, v := range domain {
			d += math.Abs(float64(counts[v])/float64(n) - float64(global[v])/float64(len(all)))
		}
		return d / 2
	}
	sort.Slice(domain, func(i, j int) bool {
		a, _ := strconv.ParseFloat(domain[i], 64)
		b, _ := strconv.ParseFloat(domain[j], 64)
		return a < b
	})
	var cum, d float64
	for _, v := range domain[:len(domain)-1] {
		cum += float64(counts[v])/float64(n) - float64(global[v])/float64(len(all))
		d += math.Abs(cum)
	}
	return d / math.Max(float64(len(domain)-1), 1)
}

var globalCache = map[*string]map[string]int{}

func globalCounts(all []string) map[string]int {
	if g, ok := globalCache[&all[0]]; ok {
		return g
	}
	g := map[string]int{}
	for _, v := range all {
		g[v]++
	}
	globalCache[&all[0]] = g
	return g
}

// checkModel verifies the released table itself: every class of kept records
// meets the model, and no more records than allowed were suppressed.
func checkModel(t *testing.T, in *Table, spec Spec, res *Result) {
	t.Helper()
	spec = spec.withDefaults()
	limit := int(math.Floor(spec.MaxSuppression*float64(len(in.Rows)) + 1e-9))
	if got := len(in.Rows) - len(res.Table.Rows); got != res.Suppressed || got > limit {
		t.Errorf("released %d of %d rows (reported %d suppressed), limit %d", len(res.Table.Rows), len(in.Rows), res.Suppressed, limit)
	}
	var sensAll []string
	if spec.Sensitive != "" {
		sensAll = in.Column(spec.Sensitive)
	}
	classes := map[string][]int{}
	for r, row := range res.Table.Rows {
		var key []string
		for _, q := range spec.QuasiIdentifiers {
			key = append(key, row[res.Table.Index(q.Column)])
		}
		k := strings.Join(key, "\x00")
		classes[k] = append(classes[k], res.RowSource[r])
	}
	for k, rows := range classes {
		if !keepClass(spec, rows, sensAll) {
			t.Errorf("released class %q (%d records) breaks the model", k, len(rows))
		}
	}
}

func TestAnonymizeProperties(t *testing.T) {
	nonMonotone := 0
	for seed := range uint64(50) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			tab := randomTable(rng, 100+rng.IntN(250))
			spec := randomSpec(rng)
			nodes := oracle(t, tab, spec)
			best := -1
			for i, nd := range nodes {
				if nd.pass && (best < 0 || nd.loss < nodes[best].loss-1e-9) {
					best = i
				}
				if spec.L > 0 && spec.LMode == LEntropy || spec.T > 0 {
					nonMonotone += countNonMonotone(nodes, i)
				}
			}
			res, err := Anonymize(context.Background(), tab, spec, testSecret(9))
			if best < 0 {
				if !errors.Is(err, ErrUnreachable) {
					t.Fatalf("no node passes by brute force, got %v, want ErrUnreachable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("brute force finds node %v, Anonymize failed: %v", nodes[best].levels, err)
			}
			checkModel(t, tab, spec, res)
			var chosen []int
			for _, l := range res.Levels {
				chosen = append(chosen, l.Level)
			}
			got := nodes[nodeIndex(nodes, chosen)]
			if !got.pass {
				t.Fatalf("chose %v, which brute force says fails", chosen)
			}
			if got.loss > nodes[best].loss+1e-9*math.Max(1, nodes[best].loss) {
				t.Errorf("chose %v with loss %.6f, brute force finds %v with %.6f", chosen, got.loss, nodes[best].levels, nodes[best].loss)
			}
			if got.suppressed != res.Suppressed {
				t.Errorf("suppressed %d, brute force says %d at %v", res.Suppressed, got.suppressed, chosen)
			}
		})
	}
	if nonMonotone == 0 {
		t.Error("no seed produced a passing node with a failing generalization: the non-monotone case went untested")
	}
}

// nodeIndex finds a node in allLevels order (last quasi-identifier fastest).
func nodeIndex(nodes []oracleNode, levels []int) int {
	for i, nd := range nodes {
		if slices.Equal(nd.levels, levels) {
			return i
		}
	}
	return -1
}

// countNonMonotone counts direct generalizations of a passing node that fail.
func countNonMonotone(nodes []oracleNode, i int) int {
	if !nodes[i].pass {
		return 0
	}
	c := 0
	for q := range nodes[i].levels {
		up := append([]int(nil), nodes[i].levels...)
		up[q]++
		if j := nodeIndex(nodes, up); j >= 0 && !nodes[j].pass {
			c++
		}
	}
	return c
}

// TestNonMonotoneEntropy: the passing node at level 0 has generalizations
// that fail (merging the diverse class with the uniform one), so tagging
// them as passing, as k-anonymity would, gives a wrong answer.
func TestNonMonotoneEntropy(t *testing.T) {
	h, err := ParseHierarchy(strings.NewReader("a;ab;*\nb;ab;*\n"))
	if err != nil {
		t.Fatal(err)
	}
	tab := table([]string{"x", "dx"}, []string{"a", "flu"}, []string{"a", "cancer"})
	for range 8 {
		tab.Rows = append(tab.Rows, []string{"b", "flu"})
	}
	spec := Spec{
		QuasiIdentifiers: []QI{{Column: "x", Custom: h}},
		Sensitive:        "dx", L: 2, LMode: LEntropy, MaxSuppression: 0.8,
	}
	res, err := Anonymize(context.Background(), tab, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Levels[0].Level != 0 || res.Suppressed != 8 || res.Search.Monotone {
		t.Errorf("got level %d with %d suppressed (monotone %v), want level 0 with 8 and a non-monotone search",
			res.Levels[0].Level, res.Suppressed, res.Search.Monotone)
	}
	nodes := oracle(t, tab, spec)
	if !nodes[0].pass || nodes[1].pass || nodes[2].pass {
		t.Fatalf("fixture lost its point: brute force says %+v", nodes)
	}
}

func TestAnonymizeHospital(t *testing.T) {
	tab := SyntheticHospital(3000, 42)
	spec := SyntheticSpec(5, 0.05)
	spec.Drop = []string{"name"}
	spec.DateShift = &DateShift{Columns: []string{"discharge_date"}, PatientColumn: "patient_id", MaxDays: 100}
	spec.MicroAggregate = &MicroAggregate{Columns: []string{}}
	res, err := Anonymize(context.Background(), tab, spec, testSecret(4))
	if err != nil {
		t.Fatal(err)
	}
	checkModel(t, tab, spec, res)
	if res.Table.Index("name") >= 0 || res.Table.Index("discharge_date") < 0 {
		t.Errorf("released columns %q: want name dropped, discharge_date kept shifted", res.Table.Columns)
	}
	if res.Risk.ProsecutorMax > 0.2+1e-12 || res.Reached.K < 5 {
		t.Errorf("risk %.3f, reached k=%d: want at most 1/5 and k ≥ 5", res.Risk.ProsecutorMax, res.Reached.K)
	}
	pseudo := map[string]string{}
	pid, out := tab.Index("patient_id"), res.Table.Index("patient_id")
	for r, row := range res.Table.Rows {
		src := tab.Rows[res.RowSource[r]]
		if prev, ok := pseudo[src[pid]]; ok && prev != row[out] {
			t.Fatalf("patient has two pseudonyms %q and %q", prev, row[out])
		}
		pseudo[src[pid]] = row[out]
		if row[out] == src[pid] {
			t.Fatal("a patient identifier was released as is")
		}
	}
	if len(res.Explanation) < 4 || res.Loss.EntropyShare <= 0 || res.Loss.EntropyShare >= 1 || res.Search.Evaluated == 0 {
		t.Errorf("thin account: %q, loss %+v, search %+v", res.Explanation, res.Loss, res.Search)
	}
	journalist, err := res.RiskAgainst(tab)
	if err != nil {
		t.Fatal(err)
	}
	if journalist.JournalistMax > res.Risk.ProsecutorMax || journalist.ProsecutorMax != res.Risk.ProsecutorMax {
		t.Errorf("against its own superset, journalist %.3f should not exceed prosecutor %.3f", journalist.JournalistMax, res.Risk.ProsecutorMax)
	}
}

func TestAnonymizeDateShiftAndMicroAggregation(t *testing.T) {
	tab := SyntheticHospital(400, 5)
	spec := Spec{
		Drop:           []string{"name", "zip", "address", "department", "diagnosis", "insurance", "age", "sex"},
		Pseudonymize:   []string{"patient_id"},
		DateShift:      &DateShift{Columns: []string{"admission_date", "discharge_date"}, PatientColumn: "patient_id"},
		MicroAggregate: &MicroAggregate{Columns: []string{"length_of_stay"}, K: 4},
	}
	res, err := Anonymize(context.Background(), tab, spec, testSecret(6))
	if err != nil {
		t.Fatal(err)
	}
	days := func(tb *Table, r int) int {
		a, _, _ := parseDate(tb.Rows[r][tb.Index("admission_date")])
		d, _, _ := parseDate(tb.Rows[r][tb.Index("discharge_date")])
		return int(d.Sub(a).Hours() / 24)
	}
	stays := map[string]int{}
	for r := range res.Table.Rows {
		if got, want := days(res.Table, r), days(tab, r); got != want {
			t.Fatalf("row %d: stay became %d days, want %d", r, got, want)
		}
		if res.Table.Rows[r][res.Table.Index("admission_date")] == tab.Rows[r][tab.Index("admission_date")] {
			t.Fatalf("row %d: admission date not shifted", r)
		}
		stays[res.Table.Rows[r][res.Table.Index("length_of_stay")]]++
	}
	for v, n := range stays {
		if n < 4 {
			t.Errorf("micro-aggregated length of stay %q shared by %d rows, want at least 4", v, n)
		}
	}
}

func TestAnonymizeCellSuppression(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	tab := randomTable(rng, 200)
	spec := Spec{
		QuasiIdentifiers: []QI{{Column: "age", Hierarchy: "age"}, {Column: "zip", Hierarchy: "zip"}},
		K:                4, MaxSuppression: 0.1, SuppressAs: "cells",
		Drop: []string{"id", "sex", "dept", "dx", "los"},
	}
	res, err := Anonymize(context.Background(), tab, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	starred := 0
	for _, row := range res.Table.Rows {
		if row[0] == Top && row[1] == Top {
			starred++
		}
	}
	if len(res.Table.Rows) != len(tab.Rows) || starred < res.Suppressed || res.Suppressed == 0 {
		t.Errorf("released %d of %d rows with %d starred, %d suppressed: want all rows, suppressed ones starred",
			len(res.Table.Rows), len(tab.Rows), starred, res.Suppressed)
	}
}

func TestAnonymizeErrors(t *testing.T) {
	base := func() (*Table, Spec) {
		tab := table([]string{"age", "sex"}, []string{"40", "F"}, []string{"41", "M"}, []string{"42", "F"})
		return tab, Spec{QuasiIdentifiers: []QI{{Column: "age", Hierarchy: "age"}}, K: 2, Keep: []string{"sex"}}
	}
	tests := []struct {
		name     string
		edit     func(*Table, *Spec)
		secret   []byte
		sentinel error
		says     string
	}{
		{"missing column", func(_ *Table, s *Spec) { s.Keep = append(s.Keep, "zip") }, nil, ErrSpec, `"zip"`},
		{"unnamed column", func(_ *Table, s *Spec) { s.Keep = nil }, nil, ErrSpec, `column "sex" is not named`},
		{"two roles", func(_ *Table, s *Spec) { s.Drop = []string{"age"} }, nil, ErrSpec, "both"},
		{"empty table", func(tb *Table, _ *Spec) { tb.Rows = nil }, nil, ErrEmpty, "no rows"},
		{"unreachable", func(_ *Table, s *Spec) { s.K = 5 }, nil, ErrUnreachable, "best reachable is k=3"},
		{"no secret", func(_ *Table, s *Spec) { s.Keep, s.Pseudonymize = nil, []string{"sex"} }, []byte("short"), ErrNoSecret, "secret"},
		{"bad value", func(tb *Table, _ *Spec) { tb.Rows[2][0] = "old" }, nil, ErrSpec, `column "age", row 3`},
		{"unknown kind", func(_ *Table, s *Spec) { s.QuasiIdentifiers[0].Hierarchy = "decade" }, nil, ErrSpec, "unknown hierarchy"},
		{"no model", func(_ *Table, s *Spec) { s.K = 0 }, nil, ErrSpec, "no privacy model"},
		{"l without sensitive", func(_ *Table, s *Spec) { s.L = 2 }, nil, ErrSpec, "sensitive"},
		{"bad levels", func(_ *Table, s *Spec) { m := 9; s.QuasiIdentifiers[0].MaxLevel = &m }, nil, ErrSpec, "do not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, spec := base()
			tc.edit(tab, &spec)
			_, err := Anonymize(context.Background(), tab, spec, tc.secret)
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want %v saying %q", err, tc.sentinel, tc.says)
			}
			if err != nil && strings.Contains(err.Error(), "old") {
				t.Errorf("error %q repeats a cell value", err)
			}
		})
	}
}

func TestAnonymizeRefusesRisk(t *testing.T) {
	tab := table([]string{"age", "zip"},
		[]string{"40", "06236"}, []string{"41", "06236"}, []string{"52", "06236"}, []string{"53", "06236"})
	spec := Spec{QuasiIdentifiers: []QI{{Column: "age", Hierarchy: "age"}}, K: 2, Keep: []string{"zip"}, MaxRisk: 0.3}
	res, err := Anonymize(context.Background(), tab, spec, nil)
	var re *RiskError
	if !errors.As(err, &re) || !errors.Is(err, ErrRiskTooHigh) {
		t.Fatalf("got %v, want a RiskError", err)
	}
	if res == nil || re.Risk.ProsecutorMax != 0.5 || len(re.Risk.Drivers) != 1 || !strings.Contains(err.Error(), "age") {
		t.Errorf("risk error %v: want max 0.5 driven by age", err)
	}
}

func TestAnonymizeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tab := SyntheticHospital(500, 1)
	if _, err := Anonymize(ctx, tab, SyntheticSpec(5, 0.05), testSecret(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// allLevels lists every node of the lattice, last quasi-identifier fastest.
func allLevels(heights []int) [][]int {
	out := [][]int{{}}
	for _, h := range heights {
		var next [][]int
		for _, prefix := range out {
			for l := 0; l <= h; l++ {
				next = append(next, append(append([]int(nil), prefix...), l))
			}
		}
		out = next
	}
	return out
}
