package tabular

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Top is the value of every hierarchy's top level: nothing is disclosed.
const Top = "*"

// Hierarchy generalizes the values of one column level by level. Level 0 is
// the value itself and the top level is "*"; every level is a function of the
// one below (a value's group at level i+1 depends only on its group at level
// i), which is what lets the search roll class counts up the lattice.
type Hierarchy struct {
	// Name says where the hierarchy came from: a built-in kind such as
	// "age" or "interval(10)", or "file".
	Name  string
	build func(values []string) ([][]string, error)
	// fixed, when set, generalizes with a height fixed by an earlier build:
	// a hierarchy whose height depends on the data (intervals) must recode
	// a population table with the levels chosen for the sample.
	fixed func(values []string, height int) ([][]string, error)
}

// Levels returns, for each value, its generalizations from level 0 (the value)
// to the top ("*"). All chains have the same length. A value the hierarchy
// cannot generalize gives a *ValueError naming its index, not its content.
func (h *Hierarchy) Levels(values []string) ([][]string, error) {
	return h.build(values)
}

// ValueError reports a value a hierarchy cannot generalize. It carries the
// value's index and a reason, never the value, which may be PHI.
type ValueError struct {
	Index  int
	Reason string
}

func (e *ValueError) Error() string { return fmt.Sprintf("value %d: %s", e.Index, e.Reason) }

// perValue builds a hierarchy from a function that generalizes one value.
// Empty cells stay empty below the top: a missing value is its own group.
func perValue(name string, height int, chain func(v string) ([]string, bool)) *Hierarchy {
	reason := "not a valid " + name + " value"
	build := func(values []string) ([][]string, error) {
		out := make([][]string, len(values))
		for i, v := range values {
			if strings.TrimSpace(v) == "" {
				out[i] = emptyChain(v, height)
				continue
			}
			c, ok := chain(v)
			if !ok {
				return nil, &ValueError{Index: i, Reason: reason}
			}
			out[i] = append(c, Top)
		}
		return out, nil
	}
	return &Hierarchy{Name: name, build: build}
}

func emptyChain(v string, height int) []string {
	c := make([]string, height+1)
	c[0] = v
	c[height] = Top
	return c
}

// ParseHierarchy reads a hierarchy file as ARX writes them: one line per
// original value, "value;level1;level2;…", every line with the same number of
// fields. A top level of "*" is added when the last column is not already
// "*". It rejects duplicate values and levels that are not a tree (one group
// with two parents).
func ParseHierarchy(r io.Reader) (*Hierarchy, error) {
	cr := csv.NewReader(r)
	cr.Comma = ';'
	lines, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("hierarchy file: %w", csvHierError(err))
	}
	table, err := hierarchyTable(lines)
	if err != nil {
		return nil, err
	}
	return &Hierarchy{Name: "file", build: table.build}, nil
}

func csvHierError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d, column %d: %v: %w", pe.Line, pe.Column, pe.Err, ErrSpec)
	}
	return err
}

// fileHierarchy is a parsed hierarchy file: value → chain.
type fileHierarchy struct {
	chains map[string][]string
}

func hierarchyTable(lines [][]string) (*fileHierarchy, error) {
	if len(lines) == 0 {
		return nil, fmt.Errorf("hierarchy file has no lines: %w", ErrSpec)
	}
	if len(lines) > 0 && len(lines[0]) > 0 {
		lines[0][0] = strings.TrimPrefix(lines[0][0], "\ufeff")
	}
	addTop := !allTop(lines)
	fh := &fileHierarchy{chains: make(map[string][]string, len(lines))}
	for n, l := range lines {
		if err := checkHierarchyLine(l, n+1); err != nil {
			return nil, err
		}
		if _, dup := fh.chains[l[0]]; dup {
			return nil, fmt.Errorf("hierarchy file line %d: value listed twice: %w", n+1, ErrSpec)
		}
		chain := l
		if addTop {
			chain = append(append([]string(nil), l...), Top)
		}
		fh.chains[l[0]] = chain
	}
	if err := checkTree(lines); err != nil {
		return nil, err
	}
	return fh, nil
}

func checkHierarchyLine(l []string, line int) error {
	for _, f := range l {
		if !utf8.ValidString(f) {
			return fmt.Errorf("hierarchy file line %d: invalid UTF-8: %w", line, ErrSpec)
		}
	}
	return nil
}

func allTop(lines [][]string) bool {
	for _, l := range lines {
		if len(l) < 2 || l[len(l)-1] != Top {
			return false
		}
	}
	return true
}

// checkTree rejects a level whose group has two different parents: rolling
// counts up from that level would then be ambiguous.
func checkTree(lines [][]string) error {
	width := len(lines[0])
	for lvl := 1; lvl+1 < width; lvl++ {
		parent := make(map[string]string)
		for n, l := range lines {
			p, seen := parent[l[lvl]]
			if seen && p != l[lvl+1] {
				return fmt.Errorf("hierarchy file line %d: the level-%d group has two parents at level %d: %w", n+1, lvl, lvl+1, ErrSpec)
			}
			parent[l[lvl]] = l[lvl+1]
		}
	}
	return nil
}

func (fh *fileHierarchy) build(values []string) ([][]string, error) {
	out := make([][]string, len(values))
	for i, v := range values {
		c, ok := fh.chains[v]
		if !ok {
			return nil, &ValueError{Index: i, Reason: "not listed in the hierarchy file"}
		}
		out[i] = c
	}
	return out, nil
}

// BuiltinHierarchy returns a built-in hierarchy by kind:
//
//	age           45 → 45-49 → 40-49 → 40-59 → *   (ages over 89 top-coded "90+")
//	date          2021-03-14 → 2021-03 → 2021 → *
//	zip           06236 → 0623* → 062** → 06*** → 0**** → *  (Korean and US 5-digit, ZIP+4)
//	district      서울특별시 강남구 역삼동 … → 서울특별시 강남구 → 서울특별시 → *
//	icd10         E11.9 → E11 → E00-E90 → *
//	interval(W)   bands of width W, 2W, 4W … from 0 until one band holds all values, then *
//	flat, sex     value → *   (kept or suppressed)
func BuiltinHierarchy(kind string) (*Hierarchy, error) {
	switch kind {
	case "age":
		return perValue("age", 4, ageChain), nil
	case "date":
		return perValue("date", 3, dateChain), nil
	case "zip":
		return perValue("zip", 5, zipChain), nil
	case "district":
		return perValue("district", 3, districtChain), nil
	case "icd10":
		return perValue("icd10", 3, icd10Chain), nil
	case "flat", "sex":
		return perValue(kind, 1, func(v string) ([]string, bool) { return []string{v}, true }), nil
	}
	if w, ok := strings.CutPrefix(kind, "interval("); ok && strings.HasSuffix(w, ")") {
		width, err := strconv.ParseFloat(strings.TrimSuffix(w, ")"), 64)
		if err != nil || !(width > 0) || width > 1e12 {
			return nil, fmt.Errorf("hierarchy %q: width must be a positive number: %w", kind, ErrSpec)
		}
		return intervalHierarchy(kind, width), nil
	}
	return nil, fmt.Errorf("unknown hierarchy kind %q (want age, date, zip, district, icd10, interval(W), flat or a hierarchy file): %w", kind, ErrSpec)
}
