package tabular

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
)

// qiCodes is one quasi-identifier encoded once as integers: every row's
// original value as an id, and for every level of its hierarchy the id of
// each value's group. The search never touches strings again.
type qiCodes struct {
	name     string
	hier     *Hierarchy
	height   int // the top level
	min, max int // the levels the search may use
	row      []uint32
	gen      [][]uint32   // gen[l][id0]: the level-l group of original value id0
	label    [][]string   // label[l][id]: the text of a level-l group
	freq     [][]int64    // freq[l][id]: rows in a level-l group
	width    []uint       // width[l]: bits a level-l id needs
	roll     [][][]uint32 // roll[a][b][id at a]: its group at level b ≥ a
	identity [][]uint32   // identity[a][id at a] = id
}

// sensCodes is the sensitive attribute encoded as ids in value order.
type sensCodes struct {
	name    string
	row     []uint32
	values  []string
	global  []float64 // each value's share of all rows
	ordered bool      // numeric: t-closeness uses ordered distance
}

// dictionary assigns ids to a column's distinct values in order of first
// appearance.
func dictionary(t *Table, col int) (ids []uint32, values []string) {
	ids = make([]uint32, len(t.Rows))
	seen := make(map[string]uint32)
	for r, row := range t.Rows {
		v := row[col]
		id, ok := seen[v]
		if !ok {
			id = uint32(len(values))
			seen[v] = id
			values = append(values, v)
		}
		ids[r] = id
	}
	return ids, values
}

func encodeQI(t *Table, q QI) (*qiCodes, error) {
	h, err := q.hierarchy()
	if err != nil {
		return nil, err
	}
	c := &qiCodes{name: q.Column, hier: h}
	var values []string
	c.row, values = dictionary(t, t.Index(q.Column))
	chains, err := h.Levels(values)
	if err != nil {
		return nil, valueError(err, q.Column, c.row)
	}
	if err := c.intern(values, chains); err != nil {
		return nil, err
	}
	if err := c.bound(q); err != nil {
		return nil, err
	}
	c.count()
	c.buildRoll()
	return c, nil
}

// valueError names the first row holding the value a hierarchy rejected.
func valueError(err error, column string, rows []uint32) error {
	var ve *ValueError
	if !errors.As(err, &ve) {
		return fmt.Errorf("generalize %q: %w", column, err)
	}
	for r, id := range rows {
		if int(id) == ve.Index {
			return fmt.Errorf("column %q, row %d: %s: %w", column, r+1, ve.Reason, ErrSpec)
		}
	}
	return fmt.Errorf("column %q: %s: %w", column, ve.Reason, ErrSpec)
}

// intern turns the chains into per-level ids and checks that the hierarchy is
// a tree with one top.
func (c *qiCodes) intern(values []string, chains [][]string) error {
	c.height = len(chains[0]) - 1
	for _, ch := range chains {
		if len(ch) != c.height+1 || c.height < 1 {
			return fmt.Errorf("hierarchy for %q: values have different numbers of levels: %w", c.name, ErrSpec)
		}
	}
	c.gen = make([][]uint32, c.height+1)
	c.label = make([][]string, c.height+1)
	for l := range c.gen {
		c.gen[l], c.label[l] = internLevel(chains, l)
	}
	if len(c.label[c.height]) != 1 {
		return fmt.Errorf("hierarchy for %q: the top level has %d groups, want one (\"*\"): %w", c.name, len(c.label[c.height]), ErrSpec)
	}
	return c.checkTree()
}

func internLevel(chains [][]string, l int) ([]uint32, []string) {
	ids := make([]uint32, len(chains))
	seen := make(map[string]uint32)
	var labels []string
	for i, ch := range chains {
		id, ok := seen[ch[l]]
		if !ok {
			id = uint32(len(labels))
			seen[ch[l]] = id
			labels = append(labels, ch[l])
		}
		ids[i] = id
	}
	return ids, labels
}

func (c *qiCodes) checkTree() error {
	for l := 1; l < c.height; l++ {
		parent := make([]int64, len(c.label[l]))
		for i := range parent {
			parent[i] = -1
		}
		for i, g := range c.gen[l] {
			p := int64(c.gen[l+1][i])
			if parent[g] >= 0 && parent[g] != p {
				return fmt.Errorf("hierarchy for %q: a level-%d group has two parents at level %d: %w", c.name, l, l+1, ErrSpec)
			}
			parent[g] = p
		}
	}
	return nil
}

func (c *qiCodes) bound(q QI) error {
	c.min, c.max = q.MinLevel, c.height
	if q.MaxLevel != nil {
		c.max = *q.MaxLevel
	}
	if c.min < 0 || c.max > c.height || c.min > c.max {
		return fmt.Errorf("quasi-identifier %q: levels %d..%d do not fit its hierarchy of height %d: %w", c.name, c.min, c.max, c.height, ErrSpec)
	}
	return nil
}

func (c *qiCodes) count() {
	c.freq = make([][]int64, c.height+1)
	c.width = make([]uint, c.height+1)
	f0 := make([]int64, len(c.label[0]))
	for _, id := range c.row {
		f0[id]++
	}
	for l := range c.freq {
		c.freq[l] = make([]int64, len(c.label[l]))
		for id0, g := range c.gen[l] {
			c.freq[l][g] += f0[id0]
		}
		c.width[l] = uint(bits.Len32(uint32(len(c.label[l]) - 1)))
	}
}

func (c *qiCodes) buildRoll() {
	c.roll = make([][][]uint32, c.height+1)
	c.identity = make([][]uint32, c.height+1)
	for a := range c.roll {
		c.identity[a] = make([]uint32, len(c.label[a]))
		for id := range c.identity[a] {
			c.identity[a][id] = uint32(id)
		}
		c.roll[a] = make([][]uint32, c.height+1)
		for b := a + 1; b <= c.height; b++ {
			m := make([]uint32, len(c.label[a]))
			for id0, g := range c.gen[a] {
				m[g] = c.gen[b][id0]
			}
			c.roll[a][b] = m
		}
	}
}

// levelOf maps a level-a id to its level-b group.
func (c *qiCodes) levelOf(id uint32, a, b int) uint32 {
	if a == b {
		return id
	}
	return c.roll[a][b][id]
}

func encodeSensitive(t *Table, name, distance string) (*sensCodes, error) {
	col := t.Index(name)
	ids, values := dictionary(t, col)
	nums, numeric := numericValues(values)
	if distance == "ordered" && !numeric {
		return nil, fmt.Errorf("sensitive attribute %q: ordered distance needs numbers in every row: %w", name, ErrSpec)
	}
	s := &sensCodes{name: name, ordered: numeric && distance != "equal"}
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		if s.ordered {
			return nums[order[a]] < nums[order[b]]
		}
		return values[order[a]] < values[order[b]]
	})
	rank := make([]uint32, len(values))
	s.values = make([]string, len(values))
	for r, i := range order {
		rank[i] = uint32(r)
		s.values[r] = values[i]
	}
	s.row = make([]uint32, len(ids))
	s.global = make([]float64, len(values))
	for r, id := range ids {
		s.row[r] = rank[id]
		s.global[rank[id]]++
	}
	for i := range s.global {
		s.global[i] /= float64(len(ids))
	}
	return s, nil
}

func numericValues(values []string) ([]float64, bool) {
	nums := make([]float64, len(values))
	for i, v := range values {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		nums[i] = f
	}
	return nums, true
}
