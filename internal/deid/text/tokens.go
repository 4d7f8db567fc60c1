package text

import (
	"unicode"
	"unicode/utf8"
)

// tokKind is the coarse class of a token. The recognizers match short
// sequences of tokens, so a note is split once and read many times.
type tokKind uint8

const (
	tWord   tokKind = iota // run of letters and digits outside Hangul
	tHangul                // run of Hangul syllables
	tSpace                 // run of white space
	tPunct                 // one rune of anything else
)

type token struct {
	start, end int
	digits     int32 // ASCII digits in a tWord
	kind       tokKind
	newline    bool // a tSpace that holds a line break
}

func (t token) allDigits() bool { return t.kind == tWord && int(t.digits) == t.end-t.start }

func isHangulSyllable(r rune) bool { return r >= 0xAC00 && r <= 0xD7A3 }

// tokenize splits s into tokens whose offsets are byte offsets on rune
// boundaries; invalid UTF-8 bytes become one-byte punctuation tokens.
func tokenize(s string) []token {
	toks := make([]token, 0, len(s)/4+4)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		t := token{start: i, kind: classify(r)}
		j := i + n
		if t.kind != tPunct {
			j = extend(s, j, t.kind)
		}
		t.end = j
		switch t.kind {
		case tWord:
			t.digits = int32(min(countDigits(s[i:j]), 1<<30))
		case tSpace:
			t.newline = hasNewline(s[i:j])
		}
		toks = append(toks, t)
		i = j
	}
	return toks
}

func classify(r rune) tokKind {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			return tWord
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			return tSpace
		}
		return tPunct
	case isHangulSyllable(r):
		return tHangul
	case r == utf8.RuneError:
		return tPunct
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
		return tWord
	case unicode.IsSpace(r):
		return tSpace
	}
	return tPunct
}

func extend(s string, j int, k tokKind) int {
	for j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if r == utf8.RuneError && n <= 1 || classify(r) != k {
			return j
		}
		j += n
	}
	return j
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

func hasNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return true
		}
	}
	return false
}
