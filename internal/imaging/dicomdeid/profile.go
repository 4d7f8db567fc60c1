package dicomdeid

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Tag is a DICOM attribute tag.
type Tag struct{ Group, Element uint16 }

func (t Tag) String() string {
	const hexDigits = "0123456789ABCDEF"
	b := []byte("(0000,0000)")
	for i := range 4 {
		b[4-i] = hexDigits[t.Group>>(4*i)&0xF]
		b[9-i] = hexDigits[t.Element>>(4*i)&0xF]
	}
	return string(b)
}

func (t Tag) key() uint32 { return uint32(t.Group)<<16 | uint32(t.Element) }

// Private reports whether t is in an odd (private) group.
func (t Tag) Private() bool { return t.Group%2 == 1 }

// Action is what the profile does to one attribute (PS3.15 E.1.1).
type Action string

// The action codes of PS3.15 Table E.1-1 that medsec applies. The combined
// codes (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) appear in rules and are resolved to
// one of these per file.
const (
	Remove  Action = "X" // remove the attribute
	Zero    Action = "Z" // empty value (or the caller's pseudonym for name and ID)
	Dummy   Action = "D" // non-empty dummy value consistent with the VR
	Keep    Action = "K" // keep; sequences are still cleaned item by item
	Clean   Action = "C" // same meaning, no identity: dates shifted, free text cleaned
	Replace Action = "U" // UIDs replaced consistently within the project
)

// Option keys as they appear in the table's option column.
const (
	optFullDates     = "lfd"
	optModifiedDates = "lmd"
	optPatientChars  = "pc"
	optDevice        = "dev"
	optInstitution   = "inst"
	optUIDs          = "uid"
	optDescriptors   = "desc"
	optStructured    = "sc"
	optGraphics      = "gfx"
)

var knownOptions = map[string]bool{
	optFullDates: true, optModifiedDates: true, optPatientChars: true, optDevice: true,
	optInstitution: true, optUIDs: true, optDescriptors: true, optStructured: true, optGraphics: true,
}

// Rule is one row of PS3.15 Table E.1-1.
type Rule struct {
	Tag  Tag
	Mask Tag // bits of Tag that must match; 0xFFFF,0xFFFF for a plain tag
	Name string
	// Basic is the Basic Profile action as the standard writes it,
	// combinations included ("X/Z/D").
	Basic string
	// Options maps an option key (lmd, pc, dev, desc, …) to the action that
	// option applies instead of Basic.
	Options map[string]Action
}

func (r *Rule) matches(t Tag) bool {
	return t.Group&r.Mask.Group == r.Tag.Group && t.Element&r.Mask.Element == r.Tag.Element
}

//go:embed table_e1_1.txt
var tableText string

type ruleSet struct {
	exact    map[uint32]*Rule
	wildcard []*Rule
	all      []Rule
}

var loadRules = sync.OnceValues(func() (*ruleSet, error) { return parseTable(tableText) })

// Rules returns the Basic Profile table medsec applies, in table order.
func Rules() ([]Rule, error) {
	rs, err := loadRules()
	if err != nil {
		return nil, err
	}
	return append([]Rule(nil), rs.all...), nil
}

func (rs *ruleSet) lookup(t Tag) *Rule {
	if r, ok := rs.exact[t.key()]; ok {
		return r
	}
	for _, r := range rs.wildcard {
		if r.matches(t) {
			return r
		}
	}
	return nil
}

func parseTable(text string) (*ruleSet, error) {
	rs := &ruleSet{exact: map[uint32]*Rule{}}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseRule(line)
		if err != nil {
			return nil, fmt.Errorf("profile table line %d: %w", n+1, err)
		}
		rs.all = append(rs.all, r)
	}
	for i := range rs.all {
		if err := rs.index(&rs.all[i]); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

func (rs *ruleSet) index(r *Rule) error {
	if r.Mask != (Tag{0xFFFF, 0xFFFF}) {
		rs.wildcard = append(rs.wildcard, r)
		return nil
	}
	if _, dup := rs.exact[r.Tag.key()]; dup {
		return fmt.Errorf("profile table: %s listed twice", r.Tag)
	}
	rs.exact[r.Tag.key()] = r
	return nil
}

func parseRule(line string) (Rule, error) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return Rule{}, fmt.Errorf("want TAG BASIC OPTIONS NAME, got %q", line)
	}
	t, mask, err := parseTagPattern(f[0])
	if err != nil {
		return Rule{}, err
	}
	if !validBasic[f[1]] {
		return Rule{}, fmt.Errorf("unknown basic action %q", f[1])
	}
	opts, err := parseOptions(f[2])
	if err != nil {
		return Rule{}, err
	}
	return Rule{Tag: t, Mask: mask, Basic: f[1], Options: opts, Name: strings.Join(f[3:], " ")}, nil
}

var validBasic = map[string]bool{
	"X": true, "Z": true, "D": true, "K": true, "C": true, "U": true,
	"X/Z": true, "X/D": true, "X/Z/D": true, "Z/D": true, "X/Z/U*": true,
}

func parseOptions(s string) (map[string]Action, error) {
	if s == "-" {
		return nil, nil
	}
	opts := map[string]Action{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !knownOptions[k] || !validBasic[v] || len(v) != 1 {
			return nil, fmt.Errorf("bad option %q", kv)
		}
		opts[k] = Action(v)
	}
	return opts, nil
}

// parseTagPattern reads "gggg,eeee" where an x stands for any hex digit.
func parseTagPattern(s string) (Tag, Tag, error) {
	g, e, ok := strings.Cut(s, ",")
	if !ok || len(g) != 4 || len(e) != 4 {
		return Tag{}, Tag{}, fmt.Errorf("bad tag %q", s)
	}
	gv, gm, err1 := parseHexPattern(g)
	ev, em, err2 := parseHexPattern(e)
	if err1 != nil || err2 != nil {
		return Tag{}, Tag{}, fmt.Errorf("bad tag %q", s)
	}
	return Tag{gv, ev}, Tag{gm, em}, nil
}

func parseHexPattern(s string) (value, mask uint16, err error) {
	for _, c := range strings.ToLower(s) {
		value, mask = value<<4, mask<<4
		if c == 'x' {
			continue
		}
		d, err := strconv.ParseUint(string(c), 16, 8)
		if err != nil {
			return 0, 0, err
		}
		value |= uint16(d)
		mask |= 0xF
	}
	return value, mask, nil
}
