package tabular

import (
	"cmp"
	"math/bits"
	"slices"
)

// Counting a node's classes is the search's hot path. A group table is kept
// in blocks: runs of entries that agree on a coarse key, the groups of some
// quasi-identifiers just below their top level (an age's 20-year band, a
// postal code's first digit, a diagnosis chapter). Wherever a node does not
// suppress such a quasi-identifier, its classes never span two of its coarse
// groups, so a node is counted one part at a time (the blocks agreeing on
// the coarse groups the node keeps). Each part needs only a small hash table
// that stays in the processor's cache, and a node that fails is given up as
// soon as the parts counted so far hold more records in too-small classes
// than may be suppressed: a class of a finished part is final.

// block is a run of a group table's entries that share a coarse key.
type block struct {
	lo, hi int32
	key    uint64
}

// fineQI is one quasi-identifier in the coarse key: its group at level,
// packed at shift.
type fineQI struct {
	q, level     int
	shift, width uint
}

// partsPerEntry bounds the blocks of the base: at least this many entries a
// block on average, or a block costs more to set up than it saves.
const partsPerEntry = 32

// blockSize is how many keys are packed at a time: the block stays in the
// first-level cache between packing and counting.
const blockSize = 2048

// chooseFine picks the quasi-identifiers of the coarse key, those with the
// most groups below their top level first, as long as the base keeps at
// least partsPerEntry entries per block.
func (e *evaluator) chooseFine(base *groupTable) {
	order := make([]int, len(e.qis))
	for q := range order {
		order[q] = q
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(len(e.qis[b].label[fineLevel(e.qis[b])]), len(e.qis[a].label[fineLevel(e.qis[a])]))
	})
	budget := max(base.len()/partsPerEntry, 1)
	keys := make([]uint64, base.len())
	trial := make([]uint64, base.len())
	var shift uint
	for _, q := range order {
		c := e.qis[q]
		l := fineLevel(c)
		w := c.width[l]
		if w == 0 || l < base.levels[q] || shift+w > 64 {
			continue
		}
		copy(trial, keys)
		packColumn(trial, base.ids[q], c.roll[base.levels[q]][l], shift)
		if e.distinct(trial) > budget {
			continue
		}
		keys, trial = trial, keys
		e.fine = append(e.fine, fineQI{q: q, level: l, shift: shift, width: w})
		shift += w
	}
}

// fineLevel is the level whose groups split a quasi-identifier in the coarse
// key: the highest the search uses below the top.
func fineLevel(c *qiCodes) int {
	return max(min(c.max, c.height-1), 0)
}

func (e *evaluator) distinct(keys []uint64) int {
	e.bt.reset(1024)
	for _, k := range keys {
		e.bt.id(k)
	}
	return int(e.bt.n)
}

// fineMask is the part of the coarse key that stays meaningful at levels:
// the quasi-identifiers not generalized beyond their coarse group.
func (e *evaluator) fineMask(levels []int) uint64 {
	var m uint64
	for _, f := range e.fine {
		if levels[f.q] <= f.level {
			m |= (1<<f.width - 1) << f.shift
		}
	}
	return m
}

// sortBlocks orders the base's entries by coarse key and cuts them into
// blocks. It returns each old entry's new place.
func (e *evaluator) sortBlocks(g *groupTable) []int32 {
	keys := make([]uint64, g.len())
	for _, f := range e.fine {
		packColumn(keys, g.ids[f.q], e.qis[f.q].roll[g.levels[f.q]][f.level], f.shift)
	}
	e.bt.reset(1024)
	id := make([]int32, g.len())
	for i, k := range keys {
		id[i] = e.bt.id(k)
	}
	start := make([]int32, e.bt.n+1)
	for _, b := range id {
		start[b+1]++
	}
	for b := range e.bt.n {
		start[b+1] += start[b]
	}
	g.blocks = make([]block, e.bt.n)
	g.mask = e.fineMask(g.levels)
	for b := range g.blocks {
		g.blocks[b] = block{lo: start[b], hi: start[b+1]}
	}
	place := make([]int32, g.len())
	for i, b := range id {
		place[i] = start[b]
		g.blocks[b].key = keys[i]
		start[b]++
	}
	g.permute(place)
	return place
}

// permute moves entry i to place[i].
func (g *groupTable) permute(place []int32) {
	for q, ids := range g.ids {
		out := make([]uint32, len(ids))
		for i, id := range ids {
			out[place[i]] = id
		}
		g.ids[q] = out
	}
	count := make([]int32, len(g.count))
	for i, c := range g.count {
		count[place[i]] = c
	}
	g.count = count
	if g.sens != nil {
		sens := make([]uint32, len(g.sens))
		for i, v := range g.sens {
			sens[place[i]] = v
		}
		g.sens = sens
	}
}

// parts lays out how src is counted at levels: the blocks whose keys agree
// on the coarse groups levels keep form a part. Parts with fewer entries
// come first (by powers of two, else in order of first appearance): rare
// combinations of coarse groups are where small classes gather, so a failing
// node is found out after fewer entries. Part p is
// runs[partStart[p]:partStart[p+1]], adjacent blocks joined into one run.
func (e *evaluator) parts(src *groupTable, levels []int) {
	e.partMask = src.mask & e.fineMask(levels)
	e.runs, e.partKey, e.partStart = e.runs[:0], e.partKey[:0], e.partStart[:0]
	if e.partMask == 0 || len(src.blocks) <= 1 {
		e.runs = append(e.runs, block{lo: 0, hi: int32(src.len())})
		e.partKey = append(e.partKey, 0)
		e.partStart = append(e.partStart, 0, 1)
		return
	}
	n := e.groupBlocks(src)
	rank := e.rankParts(n)
	e.partStart = slices.Grow(e.partStart, n+1)[:n+1]
	clear(e.partStart)
	for _, p := range e.blockPart {
		e.partStart[rank[p]+1]++
	}
	for r := range n {
		e.partStart[r+1] += e.partStart[r]
	}
	next := append(e.partNext[:0], e.partStart...)
	e.partNext = next
	e.partKey = slices.Grow(e.partKey, n)[:n]
	e.runs = slices.Grow(e.runs, len(src.blocks))[:len(src.blocks)]
	for i, b := range src.blocks {
		r := rank[e.blockPart[i]]
		e.partKey[r] = b.key & e.partMask
		e.runs[next[r]] = block{lo: b.lo, hi: b.hi}
		next[r]++
	}
	e.joinRuns()
}

// groupBlocks numbers the parts of src's blocks in order of first
// appearance, filling blockPart and partSize (entries per part). It returns
// the number of parts.
func (e *evaluator) groupBlocks(src *groupTable) int {
	e.bt.reset(len(src.blocks))
	e.blockPart = e.blockPart[:0]
	e.partSize = e.partSize[:0]
	for _, b := range src.blocks {
		p := e.bt.id(b.key & e.partMask)
		if int(p) == len(e.partSize) {
			e.partSize = append(e.partSize, 0)
		}
		e.partSize[p] += int(b.hi - b.lo)
		e.blockPart = append(e.blockPart, p)
	}
	return len(e.partSize)
}

// rankParts gives each of the n parts its place: fewer entries first, by
// powers of two.
func (e *evaluator) rankParts(n int) []int {
	var first [65]int
	for _, size := range e.partSize[:n] {
		first[bits.Len(uint(size))+1]++
	}
	for b := 1; b < len(first); b++ {
		first[b] += first[b-1]
	}
	rank := slices.Grow(e.partRank[:0], n)[:n]
	for p, size := range e.partSize[:n] {
		rank[p] = first[bits.Len(uint(size))]
		first[bits.Len(uint(size))]++
	}
	e.partRank = rank
	return rank
}

// joinRuns merges runs that follow each other in the table within a part.
func (e *evaluator) joinRuns() {
	out := 0
	for p := range len(e.partStart) - 1 {
		lo, hi := e.partStart[p], e.partStart[p+1]
		e.partStart[p] = out
		for i := lo; i < hi; i++ {
			r := e.runs[i]
			if i > lo && e.runs[out-1].hi == r.lo {
				e.runs[out-1].hi = r.hi
				continue
			}
			e.runs[out] = r
			out++
		}
	}
	e.partStart[len(e.partStart)-1] = out
	e.runs = e.runs[:out]
}

// classify groups src's entries at levels into equivalence classes, part by
// part, filling classOf, size and rep; partEnd[p] is where part p's classes
// end. It returns the number of classes, or -1 as soon as there are more
// than stopAt or, with fail set, as soon as the finished parts hold more
// records in classes smaller than k than may be suppressed (the node fails
// the monotone part of the model).
func (e *evaluator) classify(src *groupTable, levels []int, stopAt int, fail bool) int {
	e.parts(src, levels)
	fits := e.planKey(levels)
	if src.rows != nil {
		e.planRows(src, levels)
	}
	e.partEnd = e.partEnd[:0]
	classes := 0
	var small int64
	for p := range len(e.partStart) - 1 {
		runs := e.runs[e.partStart[p]:e.partStart[p+1]]
		n := e.countPart(src, levels, runs, fits, classes, stopAt)
		if n < 0 {
			return -1
		}
		if fail {
			small += e.smallIn(classes, classes+n)
			if small > e.limit {
				return -1
			}
		}
		classes += n
		e.partEnd = append(e.partEnd, classes)
	}
	return classes
}

// smallIn counts the records of classes lo..hi-1 smaller than k.
func (e *evaluator) smallIn(lo, hi int) int64 {
	var s int64
	for _, n := range e.size[lo:hi] {
		if n < e.minK {
			s += n
		}
	}
	return s
}

// countPart numbers the classes of one part after the first ones. It
// returns how many it found, or -1 past stopAt.
func (e *evaluator) countPart(src *groupTable, levels []int, runs []block, fits bool, first, stopAt int) int {
	entries := 0
	for _, r := range runs {
		entries += int(r.hi - r.lo)
	}
	e.ht.reset(startSize(entries, stopAt-first))
	if !fits {
		return e.countWide(src, levels, runs, entries, first, stopAt)
	}
	for _, r := range runs {
		for b := int(r.lo); b < int(r.hi); b += blockSize {
			end := min(b+blockSize, int(r.hi))
			keys := e.keys[:end-b]
			e.packRange(src, levels, keys, b, end)
			if !countRange(&e.ht, keys, src.count[b:end], e.classOf[b:end], e.size, e.rep, b, int32(first), stopAt) {
				return -1
			}
		}
	}
	return int(e.ht.n)
}

// countWide counts a part whose keys do not fit 64 bits: the part's keys
// are packed whole, renumbering them densely whenever the next column would
// not fit.
func (e *evaluator) countWide(src *groupTable, levels []int, runs []block, entries, first, stopAt int) int {
	keys := e.keys[:entries]
	clear(keys)
	var used uint
	for q, c := range e.qis {
		a, b := src.levels[q], levels[q]
		w := e.keyWidth[q]
		if w == 0 {
			continue
		}
		if used+w > 64 {
			used = e.densify(keys)
		}
		at := 0
		for _, r := range runs {
			packColumn(keys[at:at+int(r.hi-r.lo)], src.ids[q][r.lo:r.hi], c.roll[a][b], used)
			at += int(r.hi - r.lo)
		}
		used += w
	}
	at := 0
	for _, r := range runs {
		lo, hi := int(r.lo), int(r.hi)
		if !countRange(&e.ht, keys[at:at+hi-lo], src.count[lo:hi], e.classOf[lo:hi], e.size, e.rep, lo, int32(first), stopAt) {
			return -1
		}
		at += hi - lo
	}
	return int(e.ht.n)
}

// startSize guesses how many classes n entries make: a generalization
// usually has far fewer classes than its source, and the table grows when
// the guess is short.
func startSize(n, stopAt int) int {
	return max(min(n, stopAt+1)/8, 256)
}

// countRange numbers the classes of the entries whose keys are given,
// starting at entry offset, in h (the hash table's insert written out, since
// this loop is the search's hot path); class numbers start at first.
// classOf gets each entry's class, size and rep each class's records and
// first entry. It reports false as soon as there would be more than stopAt
// classes.
func countRange(h *keyTable, keys []uint64, count, classOf []int32, size []int64, rep []int32, offset int, first int32, stopAt int) bool {
	for i, k := range keys {
		if int(h.n)*2 >= int(h.mask+1) {
			h.grow()
		}
		j := mix(k) & h.mask
		for {
			s := &h.slots[j]
			if s.gen == h.gen && s.key == k {
				classOf[i] = s.id
				size[s.id] += int64(count[i])
				break
			}
			if s.gen != h.gen {
				id := first + h.n
				if int(id) >= stopAt {
					return false
				}
				*s = slot{key: k, id: id, gen: h.gen}
				classOf[i], size[id], rep[id] = id, int64(count[i]), int32(offset+i)
				h.n++
				break
			}
			j = (j + 1) & h.mask
		}
	}
	return true
}

// planKey sets the bits each quasi-identifier takes in the keys at levels,
// after parts: none when suppressed, and none when it is at its coarse level
// and the part key keeps it (it is the same throughout a part). It says
// whether the keys fit 64 bits without renumbering.
func (e *evaluator) planKey(levels []int) bool {
	e.keyWidth = slices.Grow(e.keyWidth[:0], len(e.qis))[:len(e.qis)]
	var used uint
	for q, c := range e.qis {
		e.keyWidth[q] = c.width[levels[q]]
		used += e.keyWidth[q]
	}
	for _, f := range e.fine {
		if levels[f.q] == f.level && e.partMask>>f.shift&1 == 1 {
			used -= e.keyWidth[f.q]
			e.keyWidth[f.q] = 0
		}
	}
	return used <= 64
}

// packRange packs the keys of entries lo..hi-1 into keys.
func (e *evaluator) packRange(src *groupTable, levels []int, keys []uint64, lo, hi int) {
	if src.rows != nil {
		e.packRows(src, keys, lo, hi)
		return
	}
	clear(keys)
	var used uint
	for q, c := range e.qis {
		a, b := src.levels[q], levels[q]
		if w := e.keyWidth[q]; w > 0 {
			packColumn(keys, src.ids[q][lo:hi], c.roll[a][b], used)
			used += w
		}
	}
}

func packColumn(keys []uint64, ids, roll []uint32, shift uint) {
	if roll == nil {
		for i, id := range ids {
			keys[i] |= uint64(id) << shift
		}
		return
	}
	for i, id := range ids {
		keys[i] |= uint64(roll[id]) << shift
	}
}

// densify renumbers keys densely (in the wide table, not the one counting).
func (e *evaluator) densify(keys []uint64) uint {
	e.wide.reset(len(keys))
	for i, k := range keys {
		keys[i] = uint64(e.wide.id(k))
	}
	return uint(bits.Len32(uint32(e.wide.n)))
}

// cells groups the entries by class and sensitive value, part by part,
// filling cellOf, cellCnt, cellCls and cellRep; partCells[p] is where part
// p's cells end. It returns the number of cells.
func (e *evaluator) cells(src *groupTable) int {
	e.ht.reset(src.len())
	e.partCells = e.partCells[:0]
	for p := range len(e.partStart) - 1 {
		for _, r := range e.runs[e.partStart[p]:e.partStart[p+1]] {
			e.cellRange(src, int(r.lo), int(r.hi))
		}
		e.partCells = append(e.partCells, int(e.ht.n))
	}
	return int(e.ht.n)
}

func (e *evaluator) cellRange(src *groupTable, lo, hi int) {
	for i := lo; i < hi; i++ {
		cls := e.classOf[i]
		before := e.ht.n
		c := e.ht.id(uint64(cls)<<32 | uint64(src.sens[i]))
		e.cellOf[i] = c
		if e.ht.n == before {
			e.cellCnt[c] += int64(src.count[i])
			continue
		}
		e.cellCnt[c], e.cellCls[c], e.cellRep[c] = int64(src.count[i]), cls, int32(i)
		e.cellSens[c] = src.sens[i]
	}
}

// planRows prepares packRows for src at levels: the roll-up table and the
// shift of each quasi-identifier that levels do not suppress.
func (e *evaluator) planRows(src *groupTable, levels []int) {
	e.rolls, e.shifts, e.cols = e.rolls[:0], e.shifts[:0], e.cols[:0]
	var used uint
	for q, c := range e.qis {
		a, b := src.levels[q], levels[q]
		if w := e.keyWidth[q]; w > 0 {
			roll := c.roll[a][b]
			if roll == nil {
				roll = c.identity[a]
			}
			e.rolls, e.shifts, e.cols = append(e.rolls, roll), append(e.shifts, used), append(e.cols, q)
			used += w
		}
	}
}

// packRows packs keys from a table kept row by row (see planRows), one
// quasi-identifier at a time: the rows of a block stay in the first-level
// cache, and each pass is a tight loop over one roll-up table.
func (e *evaluator) packRows(src *groupTable, keys []uint64, lo, hi int) {
	clear(keys)
	stride := len(e.qis)
	rows := src.rows[lo*stride : hi*stride]
	for j, q := range e.cols {
		roll, shift := e.rolls[j], e.shifts[j]
		col := rows[q:]
		for i := range keys {
			keys[i] |= uint64(roll[col[i*stride]]) << shift
		}
	}
}

// rowMajor keeps a copy of g's ids row by row when every id fits 16 bits.
func (g *groupTable) rowMajor(qis []*qiCodes) {
	for q, c := range qis {
		if len(c.label[g.levels[q]]) > 1<<16 {
			return
		}
	}
	stride := len(qis)
	g.rows = make([]uint16, g.len()*stride)
	for q, ids := range g.ids {
		for i, id := range ids {
			g.rows[i*stride+q] = uint16(id)
		}
	}
}
