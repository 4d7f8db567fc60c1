package dicomdeid

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/suyashkumar/dicom"
)

// scrubber blanks the names and IDs one file carries wherever they reappear
// in its free text ("CT chest for Hong Gildong (MRN1234567)").
type scrubber struct {
	tokens []string
	sorted bool
}

// Attributes whose values are names or identifiers to look for in text.
var identifyingTags = map[Tag]bool{
	{0x0010, 0x0010}: true, {0x0010, 0x0020}: true, {0x0010, 0x1000}: true,
	{0x0010, 0x1001}: true, {0x0010, 0x1005}: true, {0x0010, 0x1060}: true,
	{0x0008, 0x0050}: true, {0x0008, 0x0080}: true, {0x0020, 0x0010}: true,
	{0x0038, 0x0010}: true, {0x0040, 0x1001}: true, {0x0040, 0x0009}: true,
}

const scrubMark = "***"

func (s *scrubber) collect(t Tag, e *dicom.Element) {
	if !identifyingTags[t] && e.RawValueRepresentation != "PN" {
		return
	}
	vals, _ := e.Value.GetValue().([]string)
	for _, v := range vals {
		s.add(v, e.RawValueRepresentation == "PN")
	}
}

// add records a value and, for person names, each name component and the
// family and given names written together (홍길동 from 홍^길동).
func (s *scrubber) add(v string, personName bool) {
	if !personName {
		s.token(v)
		return
	}
	for _, group := range strings.Split(v, "=") {
		s.token(group)
		parts := strings.Split(group, "^")
		for _, p := range parts {
			s.token(p)
		}
		if len(parts) >= 2 {
			s.token(parts[0] + parts[1])
			s.token(parts[1] + " " + parts[0])
			s.token(parts[0] + " " + parts[1])
		}
	}
}

// token keeps values of two or more characters; a single letter or a
// one-syllable Hangul family name alone would blank ordinary words.
func (s *scrubber) token(v string) {
	v = strings.TrimSpace(v)
	if utf8.RuneCountInString(v) >= 2 {
		s.tokens = append(s.tokens, v)
	}
}

// apply replaces every token in text, longest first, ignoring ASCII case;
// ASCII tokens match whole words only ("Lee" but not "Leeds").
func (s *scrubber) apply(text string) string {
	if !s.sorted {
		slices.SortFunc(s.tokens, func(a, b string) int { return len(b) - len(a) })
		s.tokens = slices.Compact(s.tokens)
		s.sorted = true
	}
	for _, t := range s.tokens {
		text = replaceFold(text, t, isASCIIWord(t))
	}
	return text
}

// replaceFold replaces token in text, comparing ASCII letters without case.
// Tokens and text are compared byte by byte, so a non-ASCII token matches
// only its exact bytes.
func replaceFold(text, token string, wholeWord bool) string {
	var b strings.Builder
	last := 0
	for i := 0; i+len(token) <= len(text); {
		if !hasFoldPrefix(text[i:], token) || wholeWord && !wordBounded(text, i, i+len(token)) {
			i++
			continue
		}
		if b.Len() == 0 && last == 0 {
			b.Grow(len(text))
		}
		b.WriteString(text[last:i])
		b.WriteString(scrubMark)
		i += len(token)
		last = i
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

func hasFoldPrefix(s, prefix string) bool {
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(s[i]) != lowerASCII(prefix[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func wordBounded(s string, start, end int) bool {
	return (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end]))
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isASCIIWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

// The built-in free-text cleaner: patterns that identify whoever's they
// are. Order matters: longer patterns first.
var textPatterns = []*regexp.Regexp{
	regexp.MustCompile(`[\w.+-]+@[\w-]+(\.[\w-]+)+`),                                      // e-mail
	regexp.MustCompile(`\b\d{6}-?[1-8]\d{6}\b`),                                           // Korean resident registration number
	regexp.MustCompile(`(\+\d{1,3}[ -]?)?\b0\d{1,2}[ .-]?\d{3,4}[ .-]?\d{4}\b`),           // phone numbers (010-1234-5678)
	regexp.MustCompile(`\b(19|20)\d\d[-./]?(0[1-9]|1[0-2])[-./]?(0[1-9]|[12]\d|3[01])\b`), // dates
	regexp.MustCompile(`\b(0?[1-9]|[12]\d|3[01])[-./](0?[1-9]|1[0-2])[-./](19|20)\d\d\b`), // dates, day first
	regexp.MustCompile(`[A-Za-z]*\d{5,}[A-Za-z0-9]*`),                                     // IDs: runs of five or more digits
}

func cleanPatterns(s string) string {
	// Every pattern needs a digit or an @; most descriptions have neither.
	if !strings.ContainsAny(s, "0123456789@") {
		return s
	}
	for _, re := range textPatterns {
		s = re.ReplaceAllString(s, scrubMark)
	}
	return s
}
