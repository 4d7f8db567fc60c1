package tabular

import (
	"math"
)

// groupTable holds a node's groups: its equivalence classes, or with a
// sensitive attribute its cells (class × sensitive value). A table at node M
// is the source from which any generalization of M is computed ("roll-up"),
// which is much cheaper than going back to the rows.
type groupTable struct {
	node   int
	levels []int
	ids    [][]uint32 // per quasi-identifier, per group: its id at levels
	sens   []uint32   // per group, nil without a sensitive attribute
	count  []int32
	used   int64 // when the search last used it, for eviction
	// blocks cut the entries into runs sharing a coarse key (count.go);
	// mask is the part of the key that is meaningful at levels.
	blocks []block
	mask   uint64
	// rows, when set, holds ids row by row (stride: the quasi-identifiers)
	rows []uint16
}

func (g *groupTable) len() int { return len(g.count) }

// evaluation is what the search learns about one node.
type evaluation struct {
	node       int
	monotone   bool  // the monotone part (k, distinct-l) holds within the limit
	pass       bool  // the whole model holds within the limit
	classes    int   // equivalence classes, 0 when counting stopped early
	suppressed int64 // records the whole model suppresses
	loss       float64
}

// evaluator checks nodes against the privacy model. Its buffers are sized
// once for the largest source and reused for every node.
type evaluator struct {
	qis    []*qiCodes
	sens   *sensCodes
	n      int64
	spec   Spec
	limit  int64 // the most records that may be suppressed
	minK   int64 // the least size of a kept class
	minL   int   // the least distinct sensitive values of a kept class
	maxCls int   // more classes than this cannot pass: stop counting

	lbPart  [][]float64 // lbPart[q][l]: loss of QI q at level l without suppression
	penalty [][][]float64

	// lowest[q][l] and highest[q][l] are the levels of q that group the
	// records as level l does
	lowest, highest [][]int

	// fine are the quasi-identifiers of the coarse key (count.go). The
	// parts of the last count follow: part p is runs[partStart[p]:
	// partStart[p+1]] with coarse key partKey[p]; its classes end at
	// partEnd[p], its cells at partCells[p].
	fine                []fineQI
	partMask            uint64
	runs                []block
	partKey             []uint64
	partStart, partNext []int
	partEnd, partCells  []int
	partSize, partRank  []int
	blockPart           []int32
	// keyWidth[q] is the bits q takes in the node's keys (planKey);
	// rolls, shifts and cols say how packRows packs them
	keyWidth []uint
	rolls    [][]uint32
	shifts   []uint
	cols     []int

	ht, bt, wide                   keyTable
	keys                           []uint64
	classOf                        []int32
	size                           []int64
	rep                            []int32
	cellOf                         []int32
	cellCnt                        []int64
	cellCls                        []int32
	cellRep                        []int32
	cellSens                       []uint32
	cellStart, cellNext, cellOrder []int32
	keptMono                       []bool
	kept                           []bool
	dist                           []float64
}

func newEvaluator(qis []*qiCodes, sens *sensCodes, n int, spec Spec) *evaluator {
	e := &evaluator{qis: qis, sens: sens, n: int64(n), spec: spec}
	e.limit = int64(math.Floor(spec.MaxSuppression*float64(n) + 1e-9))
	e.minK = int64(max(spec.K, spec.L, 1))
	e.minL = spec.L
	e.maxCls = int((e.n-e.limit)/e.minK + e.limit)
	e.lossTables()
	e.lowest, e.highest = sameLevels(qis)
	e.grow(n)
	if sens != nil {
		e.dist = make([]float64, len(sens.values))
	}
	return e
}

func (e *evaluator) grow(entries int) {
	if entries <= len(e.classOf) {
		return
	}
	e.keys = make([]uint64, max(entries, 2*blockSize))
	e.classOf = make([]int32, entries)
	e.size = make([]int64, entries)
	e.rep = make([]int32, entries)
	e.keptMono = make([]bool, entries)
	e.kept = make([]bool, entries)
	if e.sens != nil {
		e.cellOf = make([]int32, entries)
		e.cellCnt = make([]int64, entries)
		e.cellCls = make([]int32, entries)
		e.cellRep = make([]int32, entries)
		e.cellSens = make([]uint32, entries)
		e.cellStart = make([]int32, entries+1)
		e.cellNext = make([]int32, entries)
		e.cellOrder = make([]int32, entries)
	}
}

// lossTables precomputes, per quasi-identifier and level, the loss without
// suppression (a lower bound of any node's loss that only grows with the
// levels) and the extra loss of suppressing a record in each group.
func (e *evaluator) lossTables() {
	Q := float64(len(e.qis))
	e.lbPart = make([][]float64, len(e.qis))
	e.penalty = make([][][]float64, len(e.qis))
	for q, c := range e.qis {
		e.lbPart[q] = make([]float64, c.height+1)
		e.penalty[q] = make([][]float64, c.height+1)
		for l := 0; l <= c.height; l++ {
			pen := make([]float64, len(c.label[l]))
			if e.spec.Metric == MetricPrecision {
				e.lbPart[q][l] = float64(e.n) * float64(l) / float64(c.height) / Q
				for id := range pen {
					pen[id] = float64(c.height-l) / float64(c.height) / Q
				}
			} else {
				e.lbPart[q][l] = entropyLoss(c, l)
				for id, f := range c.freq[l] {
					pen[id] = math.Log2(float64(e.n) / float64(f))
				}
			}
			e.penalty[q][l] = pen
		}
	}
}

// entropyLoss is non-uniform entropy at one level: each row loses
// log2(rows in its group / rows with its original value) bits.
func entropyLoss(c *qiCodes, l int) float64 {
	var sum float64
	for id0, f0 := range c.freq[0] {
		fl := c.freq[l][c.gen[l][id0]]
		if fl != f0 {
			sum += float64(f0) * math.Log2(float64(fl)/float64(f0))
		}
	}
	return sum
}

// lowerBound is the node's loss if nothing were suppressed.
func (e *evaluator) lowerBound(levels []int) float64 {
	var lb float64
	for q, l := range levels {
		lb += e.lbPart[q][l]
	}
	return lb
}

// group counts the classes (and cells) of src at levels without judging them.
func (e *evaluator) group(src *groupTable, levels []int) (classes, cells int) {
	classes = e.classify(src, levels, src.len(), false)
	if e.sens != nil {
		cells = e.cells(src)
	}
	return classes, cells
}

// assess evaluates the node at levels from src. With stop set it gives up
// early (monotone failure) when there are too many classes to pass.
func (e *evaluator) assess(src *groupTable, levels []int, node int, stop bool) (evaluation, int, int) {
	ev := evaluation{node: node}
	stopAt := src.len()
	if stop {
		stopAt = e.maxCls
	}
	classes := e.classify(src, levels, stopAt, stop)
	if classes < 0 {
		return ev, -1, 0
	}
	ev.classes = classes
	cells := 0
	if e.sens != nil {
		cells = e.cells(src)
	}
	e.judge(classes, cells)
	ev.monotone = e.suppressedBy(e.keptMono, classes) <= e.limit
	ev.suppressed = e.suppressedBy(e.kept, classes)
	ev.pass = ev.monotone && ev.suppressed <= e.limit
	if ev.pass || !stop {
		ev.loss = e.lowerBound(levels) + e.suppressionLoss(src, levels, classes)
	}
	return ev, classes, cells
}

func (e *evaluator) suppressedBy(kept []bool, classes int) int64 {
	var s int64
	for c := range classes {
		if !kept[c] {
			s += e.size[c]
		}
	}
	return s
}

// suppressionLoss is the loss added by suppressing the classes the model
// rejects: their cells count as fully generalized.
func (e *evaluator) suppressionLoss(src *groupTable, levels []int, classes int) float64 {
	var loss float64
	for c := range classes {
		if e.kept[c] {
			continue
		}
		r := e.rep[c]
		var per float64
		for q, qc := range e.qis {
			id := qc.levelOf(src.ids[q][r], src.levels[q], levels[q])
			per += e.penalty[q][levels[q]][id]
		}
		loss += float64(e.size[c]) * per
	}
	return loss
}

// judge decides for every class whether the monotone part of the model
// (size ≥ k, at least l distinct sensitive values) and the whole model
// (entropy l-diversity, t-closeness) keep it.
func (e *evaluator) judge(classes, cells int) {
	for c := range classes {
		e.keptMono[c] = e.size[c] >= e.minK
	}
	if e.sens == nil {
		copy(e.kept[:classes], e.keptMono[:classes])
		return
	}
	e.judgeSensitive(classes, cells)
}

// judgeSensitive applies l-diversity and t-closeness to each class, looking
// at its cells (one per distinct sensitive value).
func (e *evaluator) judgeSensitive(classes, cells int) {
	e.orderCells(classes, cells)
	needDist := (e.spec.L > 0 && e.spec.LMode == LEntropy) || e.spec.T > 0
	for c := range classes {
		own := e.cellOrder[e.cellStart[c]:e.cellStart[c+1]]
		e.keptMono[c] = e.keptMono[c] && len(own) >= e.minL
		e.kept[c] = e.keptMono[c]
		if !e.kept[c] || !needDist {
			continue
		}
		if e.spec.L > 0 && e.spec.LMode == LEntropy {
			e.kept[c] = e.entropy(own, e.size[c]) >= math.Log(float64(e.spec.L))-1e-9
		}
		if e.kept[c] && e.spec.T > 0 {
			e.kept[c] = e.emd(own, e.size[c]) <= e.spec.T+1e-12
		}
	}
}

// orderCells sorts the cells by class (counting sort): the cells of class c
// are cellOrder[cellStart[c]:cellStart[c+1]].
func (e *evaluator) orderCells(classes, cells int) {
	start := e.cellStart[:classes+1]
	clear(start)
	for _, cls := range e.cellCls[:cells] {
		start[cls+1]++
	}
	for c := range classes {
		start[c+1] += start[c]
	}
	next := e.cellNext[:classes]
	copy(next, start[:classes])
	for cell, cls := range e.cellCls[:cells] {
		e.cellOrder[next[cls]] = int32(cell)
		next[cls]++
	}
}

// entropy is the Shannon entropy (natural log) of a class's sensitive values.
func (e *evaluator) entropy(own []int32, size int64) float64 {
	var h float64
	for _, cell := range own {
		p := float64(e.cellCnt[cell]) / float64(size)
		h -= p * math.Log(p)
	}
	return h
}

// emd is the earth mover's distance between a class's sensitive distribution
// and the whole table's: ordered distance for numbers (mass moved between
// neighbouring values costs 1/(m-1)), equal distance for categories (half
// the total variation).
func (e *evaluator) emd(own []int32, size int64) float64 {
	q := e.sens.global
	if !e.sens.ordered {
		d := 1.0
		for _, cell := range own {
			p := float64(e.cellCnt[cell]) / float64(size)
			g := q[e.cellSens[cell]]
			d += math.Abs(p-g) - g
		}
		return d / 2
	}
	if len(q) < 2 {
		return 0
	}
	for _, cell := range own {
		e.dist[e.cellSens[cell]] = float64(e.cellCnt[cell]) / float64(size)
	}
	var cum, d float64
	for j := range len(q) - 1 {
		cum += e.dist[j] - q[j]
		d += math.Abs(cum)
	}
	for _, cell := range own {
		e.dist[e.cellSens[cell]] = 0
	}
	return d / float64(len(q)-1)
}

// tableOf keeps the groups of the last assessment of src at levels as a new
// source for roll-ups: one entry per class, or per cell with a sensitive
// attribute.
func (e *evaluator) tableOf(src *groupTable, levels []int, node, classes, cells int) *groupTable {
	// a table keeps the lowest levels that group alike, so it is a source
	// for every node that groups alike
	g := &groupTable{node: node, levels: make([]int, len(levels)), mask: e.partMask}
	for q, l := range levels {
		g.levels[q] = e.lowest[q][l]
	}
	reps, counts, ends := e.rep[:classes], e.size[:classes], e.partEnd
	if e.sens != nil {
		reps, counts, ends = e.cellRep[:cells], e.cellCnt[:cells], e.partCells
		g.sens = append([]uint32(nil), e.cellSens[:cells]...)
	}
	g.blocks = make([]block, len(ends))
	lo := 0
	for p, hi := range ends {
		g.blocks[p] = block{lo: int32(lo), hi: int32(hi), key: e.partKey[p]}
		lo = hi
	}
	g.count = make([]int32, len(reps))
	for i, c := range counts {
		g.count[i] = int32(c)
	}
	g.ids = make([][]uint32, len(e.qis))
	for q, qc := range e.qis {
		ids := make([]uint32, len(reps))
		a, b := src.levels[q], g.levels[q]
		for i, r := range reps {
			ids[i] = qc.levelOf(src.ids[q][r], a, b)
		}
		g.ids[q] = ids
	}
	return g
}
