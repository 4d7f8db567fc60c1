package text

import (
	"sort"
	"strings"
)

// doc is a note prepared for the recognizers: its tokens and an ASCII
// lower-cased copy with the same byte offsets for context-word look-ups.
type doc struct {
	s      string
	lower  string
	toks   []token
	lowers map[string]bool // words written in lower case, built on first use
}

func newDoc(s string) *doc {
	return &doc{s: s, lower: asciiLower(s), toks: tokenize(s)}
}

// asciiLower lower-cases ASCII letters only, so offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (d *doc) text(i int) string { return d.s[d.toks[i].start:d.toks[i].end] }

// hasLowerWord reports whether w (lower case) is written somewhere in the
// note in lower case as a word of its own.
func (d *doc) hasLowerWord(w string) bool {
	if d.lowers == nil {
		d.lowers = map[string]bool{}
		for i, t := range d.toks {
			// words inside e-mail addresses and URLs do not count
			if t.kind == tWord && t.digits == 0 && d.s[t.start] >= 'a' && d.s[t.start] <= 'z' && !inAddress(d.s, t.start, t.end) {
				d.lowers[d.text(i)] = true
			}
		}
	}
	return d.lowers[w]
}

// tokenAt returns the index of the token that starts at byte offset pos,
// or -1.
func (d *doc) tokenAt(pos int) int {
	i := sort.Search(len(d.toks), func(i int) bool { return d.toks[i].start >= pos })
	if i < len(d.toks) && d.toks[i].start == pos {
		return i
	}
	return -1
}

// next returns the index of the first non-space token after i, or -1, and
// whether a line break lies between.
func (d *doc) next(i int) (int, bool) {
	nl := false
	for j := i + 1; j < len(d.toks); j++ {
		if d.toks[j].kind != tSpace {
			return j, nl
		}
		nl = nl || d.toks[j].newline
	}
	return -1, nl
}

// prev is next's mirror.
func (d *doc) prev(i int) (int, bool) {
	nl := false
	for j := i - 1; j >= 0; j-- {
		if d.toks[j].kind != tSpace {
			return j, nl
		}
		nl = nl || d.toks[j].newline
	}
	return -1, nl
}

// before returns up to n bytes of lower-cased text before pos on the same
// line; after returns up to n bytes from pos on. Both cut on rune
// boundaries.
func (d *doc) before(pos, n int) string {
	lo := max(0, pos-n)
	if k := strings.LastIndexAny(d.lower[lo:pos], "\n\r"); k >= 0 {
		lo += k + 1
	}
	for lo < pos && !runeStart(d.lower[lo]) {
		lo++
	}
	return d.lower[lo:pos]
}

func (d *doc) after(pos, n int) string {
	hi := min(len(d.s), pos+n)
	if k := strings.IndexAny(d.lower[pos:hi], "\n\r"); k >= 0 {
		hi = pos + k
	}
	for hi > pos && hi < len(d.s) && !runeStart(d.lower[hi]) {
		hi--
	}
	return d.lower[pos:hi]
}

func runeStart(b byte) bool { return b&0xC0 != 0x80 }

// hasWordSuffix reports whether s ends with w and w starts at a word
// boundary in s.
func hasWordSuffix(s, w string) bool {
	if !strings.HasSuffix(s, w) {
		return false
	}
	k := len(s) - len(w)
	return k == 0 || !isWordByte(s[k-1]) || !isWordByte(w[0])
}

// hasWordPrefix mirrors hasWordSuffix.
func hasWordPrefix(s, w string) bool {
	if !strings.HasPrefix(s, w) {
		return false
	}
	return len(s) == len(w) || !isWordByte(s[len(w)]) || !isWordByte(w[len(w)-1])
}

// isWordByte is true for ASCII letters and digits and for any byte of a
// multi-byte rune, so Hangul words are not cut inside.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// containsWord reports whether any of words occurs in s as a whole word.
func containsWord(s string, words []string) bool {
	for _, w := range words {
		for off := 0; ; {
			k := strings.Index(s[off:], w)
			if k < 0 {
				break
			}
			k += off
			startOK := k == 0 || !isWordByte(s[k-1]) || !isWordByte(w[0])
			e := k + len(w)
			endOK := e == len(s) || !isWordByte(s[e]) || !isWordByte(w[len(w)-1])
			if startOK && endOK {
				return true
			}
			off = k + 1
		}
	}
	return false
}

// trimTail removes trailing white space and the given cut set.
func trimTail(s, cut string) string {
	return strings.TrimRight(s, " \t"+cut)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// atoi parses a short run of ASCII digits; it returns -1 on anything else.
func atoi(s string) int {
	if s == "" || len(s) > 9 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// digitRunAt reports the end of the run of ASCII digits starting at i.
func digitRunEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// boundedLeft reports whether position i is not glued to a preceding
// letter, digit or the given extra characters.
func boundedLeft(s string, i int, extra string) bool {
	if i == 0 {
		return true
	}
	c := s[i-1]
	return !(c < 0x80 && (isWordByte(c) || strings.IndexByte(extra, c) >= 0))
}

// boundedRight mirrors boundedLeft for the end of a span.
func boundedRight(s string, i int, extra string) bool {
	if i >= len(s) {
		return true
	}
	c := s[i]
	return !(c < 0x80 && (isWordByte(c) || strings.IndexByte(extra, c) >= 0))
}

// wordList finds which of many context words ends a text. The words are
// filed under their last run of letters, so a look-up costs one map access
// and a few comparisons instead of a pass over the list.
type wordList struct {
	byLast map[string][]listWord
}

type listWord struct {
	w    string
	kind Kind // for identifier labels; empty otherwise
}

func newWordList(ws ...string) *wordList {
	l := &wordList{byLast: map[string][]listWord{}}
	for _, w := range ws {
		l.add(w, "")
	}
	return l
}

func (l *wordList) add(w string, k Kind) {
	key := lastWordKey(w)
	l.byLast[key] = append(l.byLast[key], listWord{w, k})
	// longest first, so "산정특례 등록번호" wins over "등록번호"
	ws := l.byLast[key]
	for i := len(ws) - 1; i > 0 && len(ws[i].w) > len(ws[i-1].w); i-- {
		ws[i], ws[i-1] = ws[i-1], ws[i]
	}
}

// lastWordKey returns the last run of word bytes in s.
func lastWordKey(s string) string {
	e := len(s)
	for e > 0 && !isWordByte(s[e-1]) {
		e--
	}
	b := e
	for b > 0 && isWordByte(s[b-1]) {
		b--
	}
	return s[b:e]
}

// endOf returns the longest word of the list that ends b at a word
// boundary.
func (l *wordList) endOf(b string) (listWord, bool) {
	for _, w := range l.byLast[lastWordKey(b)] {
		if hasWordSuffix(b, w.w) {
			return w, true
		}
	}
	return listWord{}, false
}

func (l *wordList) ends(b string) bool {
	_, ok := l.endOf(b)
	return ok
}

// inAddress is true for a word inside an e-mail address or URL: glued to
// '@', '/', or a dot that goes on with a letter.
func inAddress(s string, start, end int) bool {
	if start > 0 && strings.IndexByte("@/._", s[start-1]) >= 0 {
		return true
	}
	if end < len(s) && (s[end] == '@' || s[end] == '_' || s[end] == '.' && end+1 < len(s) && isLetterByte(s[end+1])) {
		return true
	}
	return false
}
