package tabular

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// maxNodes bounds the generalization lattice; beyond it the spec should fix
// some levels with min_level/max_level.
const maxNodes = 1 << 22

// cacheBudget is the least number of groups kept as roll-up sources (about
// 40 bytes each); the search keeps up to twice the base's groups.
const cacheBudget = 3 << 20

// lattice numbers the nodes: one level per quasi-identifier, the first
// quasi-identifier most significant, so node order is lexicographic order.
type lattice struct {
	min, span, stride []int
	size              int
}

func newLattice(qis []*qiCodes) (lattice, error) {
	lt := lattice{min: make([]int, len(qis)), span: make([]int, len(qis)), stride: make([]int, len(qis)), size: 1}
	for q := len(qis) - 1; q >= 0; q-- {
		lt.min[q], lt.span[q], lt.stride[q] = qis[q].min, qis[q].max-qis[q].min+1, lt.size
		lt.size *= lt.span[q]
		if lt.size > maxNodes {
			return lt, fmt.Errorf("the generalization lattice has more than %d nodes; narrow some quasi-identifiers with min_level/max_level: %w", maxNodes, ErrSpec)
		}
	}
	return lt, nil
}

func (lt lattice) level(node, q int) int { return node/lt.stride[q]%lt.span[q] + lt.min[q] }

func (lt lattice) levels(node int) []int {
	out := make([]int, len(lt.min))
	for q := range out {
		out[q] = lt.level(node, q)
	}
	return out
}

// up calls f for each direct generalization of node (one level higher in one
// quasi-identifier), down for each direct specialization.
func (lt lattice) up(node int, f func(int)) {
	for q := range lt.min {
		if node/lt.stride[q]%lt.span[q] < lt.span[q]-1 {
			f(node + lt.stride[q])
		}
	}
}

func (lt lattice) down(node int, f func(int)) {
	for q := range lt.min {
		if node/lt.stride[q]%lt.span[q] > 0 {
			f(node - lt.stride[q])
		}
	}
}

// What the search knows of a node's monotone part.
const (
	unknown uint8 = iota
	fails
	passes
)

// SearchStats says how much of the lattice the search had to look at.
type SearchStats struct {
	Nodes     int // nodes in the lattice
	Evaluated int // nodes whose classes were counted
	RolledUp  int // of those, counted from a cached node's classes instead of the records
	Stopped   int // of those, given up early: too many classes to ever pass
	Tagged    int // nodes classified by monotonicity without counting
	Compared  int // passing nodes whose information loss was compared
	// Monotone says whether the whole model is monotone with suppression;
	// when not, every node the monotone part lets through is a candidate.
	Monotone bool
}

// searcher finds the optimal node.
type searcher struct {
	ctx    context.Context
	e      *evaluator
	lat    lattice
	status []uint8
	lb     []float64
	height []int
	evals  map[int]evaluation
	base   *groupTable
	cache  []*groupTable
	cached int
	clock  int64
	stats  SearchStats
	budget int   // the most groups to keep cached
	failed []int // failing nodes whose generalizations are still to follow, oldest first
	// bound is the least loss of a passing node evaluated so far: nodes
	// whose loss bound is above it can never be chosen, so the search
	// need not settle them.
	bound float64
}

func newSearcher(ctx context.Context, e *evaluator, lat lattice, base *groupTable) *searcher {
	s := &searcher{ctx: ctx, e: e, lat: lat, base: base, evals: make(map[int]evaluation), bound: math.Inf(1)}
	s.status = make([]uint8, lat.size)
	s.lb = make([]float64, lat.size)
	s.height = make([]int, lat.size)
	for v := range lat.size {
		lv := lat.levels(v)
		s.lb[v] = e.lowerBound(lv)
		for _, l := range lv {
			s.height[v] += l
		}
	}
	s.stats.Nodes = lat.size
	s.budget = max(cacheBudget, 2*base.len())
	s.stats.Monotone = e.spec.T == 0 && (e.spec.L == 0 || e.spec.LMode == LDistinct)
	return s
}

// run classifies the lattice by the monotone part of the model, then finds
// the passing node of least loss. It reports false when no node passes.
func (s *searcher) run() (evaluation, bool, error) {
	if err := s.classify(); err != nil {
		return evaluation{}, false, err
	}
	return s.optimum()
}

// classify settles every node as passing or failing the monotone part, with
// few evaluations. It takes the unsettled node of least loss bound; when that
// fails, it follows the border upward: from each failing node in turn, a
// path of unsettled generalizations is walked to the top and binary-searched
// (Flash). Each
// evaluation tags all generalizations of a passing node and all
// specializations of a failing node (predictive tagging), so most nodes are
// settled without being counted; and as paths start just above a failing
// node, they roll up from its cached classes.
func (s *searcher) classify() error {
	order := s.nodesBy(func(a, b int) bool {
		return s.lb[a] < s.lb[b]
	})
	for _, v := range order {
		if s.lb[v] > s.bound {
			break // every node left loses more than a passing one found
		}
		if s.status[v] != unknown {
			continue
		}
		// v's specializations are settled, so most likely fail: v is near
		// the border, and counting it first gives the paths above it a
		// source to roll up from
		if err := s.searchPath(s.path(v)); err != nil {
			return err
		}
		if err := s.followBorder(); err != nil {
			return err
		}
	}
	return nil
}

// followBorder continues from the failing nodes the last paths found: paths
// that start just above a failing node stay near the border between passing
// and failing, where the nodes that must be evaluated are, and roll up from
// the failing node's cached classes.
func (s *searcher) followBorder() error {
	for len(s.failed) > 0 {
		f := s.failed[0]
		s.failed = s.failed[1:]
		var err error
		s.lat.up(f, func(u int) {
			if err == nil && s.status[u] == unknown && s.lb[u] <= s.bound {
				err = s.searchPath(s.path(u))
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *searcher) nodesBy(less func(a, b int) bool) []int {
	order := make([]int, s.lat.size)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return less(order[i], order[j]) })
	return order
}

// path climbs from v through unsettled nodes, each step to the
// generalization that loses least.
func (s *searcher) path(v int) []int {
	p := []int{v}
	for {
		next := -1
		s.lat.up(v, func(u int) {
			if s.status[u] == unknown && s.lb[u] <= s.bound && (next < 0 || s.lb[u] < s.lb[next]) {
				next = u
			}
		})
		if next < 0 {
			return p
		}
		p = append(p, next)
		v = next
	}
}

// searchPath finds where p (a chain, each node generalizing the one before)
// turns from failing to passing. It counts the top first: near the loss
// bound, a failing node settles the most nodes below it, and a passing one
// is a candidate the search would count anyway. Then it bisects (Flash).
func (s *searcher) searchPath(p []int) error {
	lo, hi, first := 0, len(p)-1, true
	for lo <= hi {
		if s.lb[p[hi]] > s.bound {
			hi-- // a better node was found meanwhile: the top of p is moot
			continue
		}
		mid := (lo + hi) / 2
		if first {
			mid, first = hi, false
		}
		v := p[mid]
		if s.status[v] == unknown {
			ev, err := s.evaluate(v)
			if err != nil {
				return err
			}
			s.tag(v, ev.monotone)
			if !ev.monotone {
				s.failed = append(s.failed, v)
			}
		}
		if s.status[v] == passes {
			hi = mid - 1
		} else {
			lo = mid + 1
		}
	}
	return nil
}

// same moves v to the lowest or highest node with the same classes: where
// the next level of a quasi-identifier merges no groups (every diagnosis
// code of the data its own category), both levels count alike.
func (s *searcher) same(v int, level [][]int) int {
	u := 0
	for q := range s.lat.min {
		u += (level[q][s.lat.level(v, q)] - s.lat.min[q]) * s.lat.stride[q]
	}
	return u
}

// tag marks v and, by monotonicity, all its generalizations as passing or
// all its specializations as failing. It stops where nodes are already
// marked: their own tagging covered what lies beyond.
func (s *searcher) tag(v int, pass bool) {
	mark, walk, from := fails, s.lat.down, s.same(v, s.e.highest)
	if pass {
		mark, walk, from = passes, s.lat.up, s.same(v, s.e.lowest)
	}
	stack := []int{from}
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.status[u] == mark {
			continue
		}
		s.status[u] = mark
		if u != v {
			s.stats.Tagged++
		}
		walk(u, func(w int) {
			if s.status[w] != mark {
				stack = append(stack, w)
			}
		})
	}
}

// optimum visits the passing nodes in order of their loss bound and stops
// once the bound exceeds the best loss found: the bound only grows with
// generalization, so no later node can do better.
func (s *searcher) optimum() (evaluation, bool, error) {
	order := s.nodesBy(func(a, b int) bool { return s.lb[a] < s.lb[b] })
	var best evaluation
	found := false
	for _, v := range order {
		if found && s.lb[v] > best.loss {
			break
		}
		if s.status[v] != passes {
			continue
		}
		if s.e.spec.Metric == MetricEntropy && s.same(v, s.e.lowest) != v {
			continue // the lowest node alike loses as much, at less height
		}
		ev, err := s.evaluate(v)
		if err != nil {
			return best, false, err
		}
		if ev.pass {
			s.stats.Compared++
		}
		if ev.pass && (!found || s.better(ev, best)) {
			best, found = ev, true
		}
	}
	return best, found, nil
}

// better orders passing nodes: least loss, then least total level, then
// lexicographically first.
func (s *searcher) better(a, b evaluation) bool {
	if a.loss != b.loss {
		return a.loss < b.loss
	}
	if s.height[a.node] != s.height[b.node] {
		return s.height[a.node] < s.height[b.node]
	}
	return a.node < b.node
}

// sameLevels finds, for each level of each quasi-identifier, the levels
// with the same groups (a level is a coarsening of the one below, so the
// same number of groups means the same groups).
func sameLevels(qis []*qiCodes) (lowest, highest [][]int) {
	lowest, highest = make([][]int, len(qis)), make([][]int, len(qis))
	for q, c := range qis {
		lowest[q], highest[q] = make([]int, c.height+1), make([]int, c.height+1)
		for l := c.min; l <= c.max; l++ {
			lowest[q][l] = l
			if l > c.min && len(c.label[l]) == len(c.label[l-1]) {
				lowest[q][l] = lowest[q][l-1]
			}
		}
		for l := c.max; l >= c.min; l-- {
			highest[q][l] = l
			if l < c.max && len(c.label[l]) == len(c.label[l+1]) {
				highest[q][l] = highest[q][l+1]
			}
		}
	}
	return lowest, highest
}

func (s *searcher) evaluate(v int) (evaluation, error) {
	if s.e.spec.Metric == MetricEntropy {
		v = s.same(v, s.e.lowest) // alike nodes lose alike
	}
	if ev, ok := s.evals[v]; ok {
		return ev, nil
	}
	if err := s.ctx.Err(); err != nil {
		return evaluation{}, fmt.Errorf("search generalizations: %w", err)
	}
	levels := s.lat.levels(v)
	src := s.source(levels)
	ev, classes, cells := s.e.assess(src, levels, v, true)
	s.stats.Evaluated++
	if src != s.base {
		s.stats.RolledUp++
	}
	if classes < 0 {
		s.stats.Stopped++
	} else {
		s.remember(src, levels, v, classes, cells)
	}
	s.evals[v] = ev
	if ev.pass {
		s.bound = math.Min(s.bound, ev.loss)
	}
	return ev, nil
}

// source picks the smallest cached group table whose node every level of
// levels generalizes; the base table always qualifies.
func (s *searcher) source(levels []int) *groupTable {
	best := s.base
	for _, g := range s.cache {
		if g.len() < best.len() && below(g.levels, levels) {
			best = g
		}
	}
	s.clock++
	best.used = s.clock
	return best
}

func below(a, b []int) bool {
	for q := range a {
		if a[q] > b[q] {
			return false
		}
	}
	return true
}

// remember caches the node's groups when they are few enough to make later
// roll-ups cheaper, evicting the least recently used tables over budget.
func (s *searcher) remember(src *groupTable, levels []int, v, classes, cells int) bool {
	n := classes
	if s.e.sens != nil {
		n = cells
	}
	if n > s.base.len()/2 || n > s.budget/2 {
		return false
	}
	g := s.e.tableOf(src, levels, v, classes, cells)
	s.clock++
	g.used = s.clock
	s.cache = append(s.cache, g)
	s.cached += n
	for s.cached > s.budget {
		s.evictOldest()
	}
	return true
}

func (s *searcher) evictOldest() {
	old := 0
	for i, g := range s.cache {
		if g.used < s.cache[old].used {
			old = i
		}
	}
	s.cached -= s.cache[old].len()
	s.cache = append(s.cache[:old], s.cache[old+1:]...)
}
