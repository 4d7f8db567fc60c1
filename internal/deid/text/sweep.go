package text

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// sweep adds every other whole-word occurrence of a value already found,
// so that a number recognized once by its label, or a name recognized once
// by its title, is removed wherever else it is written. fs must be sorted
// and not overlap; so is the result.
func sweep(d *doc, fs []Finding) []Finding {
	s := d.s
	if len(fs) == 0 {
		return fs
	}
	byKey := map[string][]Finding{}
	seen := map[string]bool{}
	for _, f := range fs {
		key, off, ok := sweepKey(f.Text)
		if !ok || seen[f.Text] {
			continue
		}
		seen[f.Text] = true
		f.Start = off // offset of the key inside the value
		byKey[key] = append(byKey[key], f)
	}
	var add []Finding
	for _, t := range d.toks { // every word starts a token
		if t.kind != tWord && t.kind != tHangul {
			continue
		}
		i := t.start
		key := firstRunes(s[i:], 2)
		for _, f := range byKey[key] {
			start := i - f.Start
			end := start + len(f.Text)
			if start >= 0 && end <= len(s) && s[start:end] == f.Text && !overlapsSorted(fs, start, end) && wholeWord(s, start, end, fs) {
				add = append(add, Finding{Kind: f.Kind, Start: start, End: end, Text: f.Text, Confidence: f.Confidence})
			}
		}
	}
	if len(add) == 0 {
		return fs
	}
	return resolve(s, append(append([]Finding(nil), fs...), add...))
}

// sweepKey returns the first two runes of the first word in v and where
// that word starts. Values shorter than two runes are not swept: a lone
// family name such as "김" is also an ordinary syllable.
func sweepKey(v string) (string, int, bool) {
	if utf8.RuneCountInString(v) < 2 {
		return "", 0, false
	}
	for i, r := range v {
		if isWordRune(r) {
			k := firstRunes(v[i:], 2)
			return k, i, true
		}
	}
	return "", 0, false
}

func firstRunes(s string, n int) string {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isWordRune(r) {
			break
		}
		i += size
	}
	return s[:i]
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

// wholeWord reports whether s[start:end] stands as a word of its own: no
// letter or digit glued on either side, except a Hangul particle or title
// after a Hangul value ("김민수님은"). The edge of another finding counts as
// a word boundary.
func wholeWord(s string, start, end int, fs []Finding) bool {
	if start > 0 && isWordRune(lastRune(s[:start])) && !endsFinding(fs, start) {
		return false
	}
	if end >= len(s) || startsFinding(fs, end) {
		return true
	}
	next, _ := utf8.DecodeRuneInString(s[end:])
	if !isWordRune(next) {
		return true
	}
	if !isHangulSyllable(lastRune(s[start:end])) || !isHangulSyllable(next) {
		return false
	}
	j := end
	for j < len(s) && !startsFinding(fs, j) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if !isHangulSyllable(r) {
			break
		}
		j += n
	}
	if j < len(s) && !startsFinding(fs, j) && isWordRune(runeAt(s, j)) {
		return false
	}
	rest := s[end:j]
	return koParticles[rest] || startsWithTitle(rest)
}

func runeAt(s string, j int) rune {
	r, _ := utf8.DecodeRuneInString(s[j:])
	return r
}

func endsFinding(fs []Finding, pos int) bool {
	i := sort.Search(len(fs), func(i int) bool { return fs[i].End >= pos })
	return i < len(fs) && fs[i].End == pos
}

func startsFinding(fs []Finding, pos int) bool {
	i := sort.Search(len(fs), func(i int) bool { return fs[i].Start >= pos })
	return i < len(fs) && fs[i].Start == pos
}

// overlapsSorted reports whether [start, end) overlaps any of the sorted,
// non-overlapping findings.
func overlapsSorted(fs []Finding, start, end int) bool {
	i := sort.Search(len(fs), func(i int) bool { return fs[i].End > start })
	return i < len(fs) && fs[i].Start < end
}
