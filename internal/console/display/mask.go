// Package display is the non-identifying designation of patients on site
// (the paper's location 7, "patients wait in open spaces"): the rule that
// turns a name into what a waiting-room screen may show (김민수 → 김*수,
// Kim Ji-hun → K** J*-h**) and the screen's settings. A masked name always
// hides at least one letter of every part of the name, so the full name
// never reaches the screen whatever the rule says.
package display

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Rule says how much of a name stays visible. Syllabic scripts (Hangul,
// Han, kana) write a name as one run of syllables; alphabetic ones
// (Latin, Cyrillic, …) as parts split at spaces, hyphens and apostrophes,
// each masked on its own.
type Rule struct {
	// Char replaces each hidden letter.
	Char string `yaml:"char"`
	// SyllabicFirst and SyllabicLast are the syllables kept at the start
	// and end of a syllabic run.
	SyllabicFirst int `yaml:"syllabic_first"`
	SyllabicLast  int `yaml:"syllabic_last"`
	// AlphabeticFirst and AlphabeticLast are the letters kept at the start
	// and end of each alphabetic part.
	AlphabeticFirst int `yaml:"alphabetic_first"`
	AlphabeticLast  int `yaml:"alphabetic_last"`
	// Width, when positive, writes every hidden stretch as exactly Width
	// mask characters, so the screen does not show a name's length.
	Width int `yaml:"width"`
}

// DefaultRule keeps the first and last syllable of a Hangul name and the
// first letter of each part of a Latin one.
var DefaultRule = Rule{Char: "*", SyllabicFirst: 1, SyllabicLast: 1, AlphabeticFirst: 1}

// maxKeep bounds what a rule may keep; names are short.
const maxKeep = 3

// Validate says what is wrong with a rule.
func (r Rule) Validate() error {
	var errs []error
	if utf8.RuneCountInString(r.Char) != 1 || !unicode.IsPrint([]rune(r.Char)[0]) || isLetter([]rune(r.Char)[0]) {
		errs = append(errs, fmt.Errorf("mask char %q: use one printable character that is not a letter", r.Char))
	}
	for name, n := range map[string]int{"syllabic_first": r.SyllabicFirst, "syllabic_last": r.SyllabicLast,
		"alphabetic_first": r.AlphabeticFirst, "alphabetic_last": r.AlphabeticLast} {
		if n < 0 || n > maxKeep {
			errs = append(errs, fmt.Errorf("%s: %d is not between 0 and %d", name, n, maxKeep))
		}
	}
	if r.Width < 0 || r.Width > 8 {
		errs = append(errs, fmt.Errorf("width: %d is not between 0 and 8", r.Width))
	}
	return errors.Join(errs...)
}

// maxNameRunes bounds the input a mask works on.
const maxNameRunes = 200

// Mask returns the name as the screen may show it. Every run of letters
// keeps at most its rule's first and last letters and always hides at
// least one; separators (spaces, hyphens, apostrophes, dots) stay;
// control and formatting characters are dropped. A name without letters
// becomes a single mask character.
func (r Rule) Mask(name string) string {
	runes := []rune(norm.NFC.String(strings.TrimSpace(name)))
	if len(runes) > maxNameRunes {
		runes = runes[:maxNameRunes]
	}
	var b strings.Builder
	hidden := false
	for i := 0; i < len(runes); {
		c := classOf(runes[i])
		j := i + 1
		for j < len(runes) && (classOf(runes[j]) == c || (c != separator && unicode.IsMark(runes[j]))) {
			j++
		}
		switch c {
		case separator:
			writeSeparators(&b, runes[i:j])
		default:
			r.writeRun(&b, runes[i:j], c)
			hidden = true
		}
		i = j
	}
	if !hidden {
		return r.Char
	}
	return b.String()
}

// writeRun writes one run of letters with its middle hidden.
func (r Rule) writeRun(b *strings.Builder, run []rune, c class) {
	first, last := r.AlphabeticFirst, r.AlphabeticLast
	if c == syllabic {
		first, last = r.SyllabicFirst, r.SyllabicLast
	}
	first, last = keep(len(run), first, last)
	b.WriteString(string(run[:first]))
	n := len(run) - first - last
	if r.Width > 0 {
		n = r.Width
	}
	b.WriteString(strings.Repeat(r.Char, n))
	b.WriteString(string(run[len(run)-last:]))
}

// keep trims what a run of n letters keeps so that at least one is hidden:
// the end gives way first, then the start.
func keep(n, first, last int) (int, int) {
	if first+last >= n {
		last = max(0, n-1-first)
	}
	if first >= n {
		first = n - 1
	}
	return first, last
}

func writeSeparators(b *strings.Builder, run []rune) {
	for _, r := range run {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsPrint(r):
			b.WriteRune(r)
		}
	}
}

type class int

const (
	separator class = iota
	alphabetic
	syllabic
)

func classOf(r rune) class {
	switch {
	case unicode.In(r, unicode.Hangul, unicode.Han, unicode.Hiragana, unicode.Katakana):
		return syllabic
	case isLetter(r) || unicode.IsMark(r):
		return alphabetic
	}
	return separator
}

// isLetter counts digits as letters: a number in a name field identifies
// as much as a letter does.
func isLetter(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
