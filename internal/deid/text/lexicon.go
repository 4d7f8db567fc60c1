package text

import (
	"embed"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed lexicon/*.txt
var lexiconFS embed.FS

// lexicon holds the word lists the name recognizer and the surrogate
// generator share. It is read once, on first use.
type lexicon struct {
	firstNames  map[string]bool // "margaret"; look up with has
	surnames    map[string]bool // "sullivan"
	firstList   []string        // for surrogates
	female      map[string]bool // given names mostly borne by women
	femaleList  []string
	maleList    []string
	surnameList []string          // for surrogates
	koSurnames  map[string]bool   // "김", "남궁"
	koRoman     map[string]string // "kim" -> "김"
	koRomanSet  map[string]bool
	koSurList   []string      // Hangul surnames, most common first
	koRomanList []string      // one romanization per surname, same order
	koGiven     map[rune]bool // syllables common in given names
	koGivenList []rune
	koStop      map[string]bool
	eponyms     map[string]bool // lower case
	enStop      map[string]bool // lower case
}

var lex = sync.OnceValue(loadLexicon)

func loadLexicon() *lexicon {
	l := &lexicon{koRoman: map[string]string{}, koSurnames: map[string]bool{}, koGiven: map[rune]bool{}}
	l.firstList = words("first_names.txt")
	l.surnameList = words("surnames.txt")
	l.firstNames = lowerSet(l.firstList)
	l.femaleList = words("female_names.txt")
	l.female = lowerSet(l.femaleList)
	for _, n := range l.firstList {
		if !has(l.female, n) {
			l.maleList = append(l.maleList, n)
		}
	}
	l.surnames = lowerSet(l.surnameList)
	l.koStop = toSet(words("ko_stopwords.txt"))
	l.enStop = lowerSet(words("en_stopwords.txt"))
	l.eponyms = lowerSet(words("eponyms.txt"))
	for _, line := range lines("ko_surnames.txt") {
		f := strings.Fields(line)
		if l.koSurnames[f[0]] {
			continue
		}
		l.koSurnames[f[0]] = true
		l.koSurList = append(l.koSurList, f[0])
		l.koRomanList = append(l.koRomanList, f[1])
		for _, r := range f[1:] {
			if _, dup := l.koRoman[strings.ToLower(r)]; !dup {
				l.koRoman[strings.ToLower(r)] = f[0]
			}
		}
	}
	l.koRomanSet = map[string]bool{}
	for r := range l.koRoman {
		l.koRomanSet[r] = true
	}
	for _, w := range words("ko_given_syllables.txt") {
		r, _ := utf8.DecodeRuneInString(w)
		if !l.koGiven[r] {
			l.koGiven[r] = true
			l.koGivenList = append(l.koGivenList, r)
		}
	}
	return l
}

// lines returns the non-empty, non-comment lines of an embedded list. The
// lists are part of the binary, so a read error is a build defect.
func lines(name string) []string {
	b, err := lexiconFS.ReadFile("lexicon/" + name)
	if err != nil {
		panic("deid/text: embedded lexicon missing: " + name)
	}
	var out []string
	for _, ln := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(ln, '#'); i >= 0 {
			ln = ln[:i]
		}
		if ln = strings.TrimSpace(ln); ln != "" {
			out = append(out, ln)
		}
	}
	return out
}

func words(name string) []string {
	var out []string
	for _, ln := range lines(name) {
		out = append(out, strings.Fields(ln)...)
	}
	return out
}

func lowerSet(ws []string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[strings.ToLower(w)] = true
	}
	return m
}

// has looks w up in a set of lower-case words.
func has(set map[string]bool, w string) bool {
	return lookup(set, w)
}

// lookup finds w in a map with lower-case keys, lower-casing ASCII letters
// on the stack so that the look-up does not allocate.
func lookup[V any](m map[string]V, w string) V {
	var buf [48]byte
	if len(w) > len(buf) {
		return m[strings.ToLower(w)]
	}
	b := buf[:len(w)]
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return m[string(b)]
}
