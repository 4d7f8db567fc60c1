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

// Bounds on the scrubber's work for hostile files: cleaning costs
// tokens x text length.
const (
	maxScrubTokens   = 256
	maxScrubTokenLen = 64 // a PN component group is at most 64 characters
)

// token keeps values of two or more characters; a single letter or a
// one-syllable Hangul family name alone would blank ordinary words.
func (s *scrubber) token(v string) {
	v = strings.TrimSpace(v)
	if utf8.RuneCountInString(v) >= 2 && len(v) <= 4*maxScrubTokenLen && len(s.tokens) < maxScrubTokens {
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

// replaceFold replaces token in text, comparing ASCII letters without case
// (non-ASCII bytes must match exactly). It searches a lowered copy with
// strings.Index, so the cost stays linear in the text for each token.
func replaceFold(text, token string, wholeWord bool) string {
	lower, tok := lowerASCII(text), lowerASCII(token)
	var b strings.Builder
	last := 0
	for from := 0; from <= len(lower)-len(tok); {
		i := strings.Index(lower[from:], tok)
		if i < 0 {
			break
		}
		i += from
		if wholeWord && !wordBounded(text, i, i+len(tok)) {
			from = i + 1
			continue
		}
		b.WriteString(text[last:i])
		b.WriteString(scrubMark)
		from, last = i+len(tok), i+len(tok)
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// lowerASCII lowers ASCII letters only, so byte offsets stay those of s.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
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
