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
	re     *regexp.Regexp
	built  bool
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

func (s *scrubber) apply(text string) string {
	if !s.built {
		s.build()
	}
	if s.re == nil {
		return text
	}
	return s.re.ReplaceAllString(text, scrubMark)
}

// build compiles one case-insensitive alternation, longest token first;
// ASCII tokens match whole words only.
func (s *scrubber) build() {
	s.built = true
	if len(s.tokens) == 0 {
		return
	}
	slices.SortFunc(s.tokens, func(a, b string) int { return len(b) - len(a) })
	parts := make([]string, 0, len(s.tokens))
	for _, t := range slices.Compact(s.tokens) {
		q := regexp.QuoteMeta(t)
		if isASCIIWord(t) {
			q = `\b` + q + `\b`
		}
		parts = append(parts, q)
	}
	s.re = regexp.MustCompile(`(?i)(?:` + strings.Join(parts, "|") + `)`)
}

func isASCIIWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
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
	for _, re := range textPatterns {
		s = re.ReplaceAllString(s, scrubMark)
	}
	return s
}
