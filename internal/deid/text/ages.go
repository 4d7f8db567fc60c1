package text

import (
	"strings"
)

// Words after a number that make it an age, lower case, longest first
// where one is the prefix of another.
var ageAfter = []string{"-year-old", "-years-old", " year-old", " years-old", "-year old", " year old",
	" years old", "-yo", " yo", "yo", " y/o", "y/o", " y.o.", "y.o.", " y.o", " yrs", " years", " yr",
	"-y", " y", "y", "세", "살", "f", "m", " f", " m"}

// Words before a number that make it an age.
var ageBefore = []string{"age", "aged", "age:", "age of", "만", "나이", "나이:", "연령", "연령:", "만나이", "f/", "m/", "여/", "남/", "female/",
	"male/", "f /", "m /"}

// findAges finds ages over 89, which Safe Harbor counts as identifying.
// Younger ages are left alone.
func findAges(d *doc, out []Finding) []Finding {
	for i, t := range d.toks {
		if t.kind != tWord || t.digits < 2 {
			continue
		}
		w := d.text(i)
		e := digitRunEnd(w, 0)
		n := atoi(w[:e])
		if e > 3 || n < 90 || n > 125 || !boundedLeft(d.s, t.start, ".-/:") && !ageSlashBefore(d, t.start) {
			continue
		}
		if c := ageConfidence(d, t.start, t.start+e); c > 0 {
			out = append(out, Finding{Kind: Age, Start: t.start, End: t.start + e, Confidence: c})
		}
	}
	return out
}

// ageSlashBefore allows "F/92" and "여/90", where a slash is glued on.
func ageSlashBefore(d *doc, pos int) bool {
	b := d.before(pos, 10)
	for _, w := range ageBefore {
		if strings.HasSuffix(w, "/") && hasWordSuffix(b, w) {
			return true
		}
	}
	return false
}

func ageConfidence(d *doc, start, end int) float64 {
	a := d.after(end, 12)
	for _, w := range ageAfter {
		if strings.HasPrefix(a, w) && (len(a) == len(w) || !isLetterByte(a[len(w)]) || w == "세" || w == "살") {
			return 0.9
		}
	}
	b := d.before(start, 16)
	for _, w := range ageBefore {
		if hasWordSuffix(strings.TrimRight(b, " "), w) || hasWordSuffix(b, w) {
			return 0.9
		}
	}
	// "Harold Jenkins, 95, with ...": a bare number between commas right
	// after a capitalized word.
	if strings.HasSuffix(b, ", ") && strings.HasPrefix(a, ",") && capitalizedBefore(d, start) {
		return 0.6
	}
	return 0
}

func isLetterByte(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func capitalizedBefore(d *doc, pos int) bool {
	i := d.tokenAt(pos)
	j, _ := d.prev(i)
	if j < 0 || d.text(j) != "," {
		return false
	}
	j, _ = d.prev(j)
	return j >= 0 && (d.toks[j].kind == tHangul || d.toks[j].kind == tWord && isUpperByte(d.s[d.toks[j].start]))
}

func isUpperByte(c byte) bool { return c >= 'A' && c <= 'Z' }

// spelledAges are the words for ages over 89 that dictated notes spell out.
var spelledAges = []string{"ninety", "one hundred", "hundred"}

// findSpelledAges finds "ninety-two-year-old", "ninety two years old".
func findSpelledAges(d *doc, out []Finding) []Finding {
	for _, w := range spelledAges {
		for off := 0; ; {
			k := strings.Index(d.lower[off:], w)
			if k < 0 {
				break
			}
			k += off
			off = k + len(w)
			if !boundedLeft(d.lower, k, "") {
				continue
			}
			end := k + len(w)
			if m := spelledUnit(d.lower[end:]); m > 0 {
				end += m
			}
			a := d.lower[end:]
			if hasAgeWordAfter(a) {
				out = append(out, Finding{Kind: Age, Start: k, End: end, Confidence: 0.85})
			}
			off = end
		}
	}
	return out
}

// spelledUnit reads "-two", " two" ... " nine" after "ninety".
func spelledUnit(a string) int {
	for _, u := range []string{"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"} {
		for _, sep := range []string{"-", " "} {
			if hasWordPrefix(a, sep+u) {
				return len(sep + u)
			}
		}
	}
	return 0
}

func hasAgeWordAfter(a string) bool {
	for _, w := range []string{"-year-old", " year-old", " year old", " years old", "-year old", " years of age", " yo"} {
		if strings.HasPrefix(a, w) {
			return true
		}
	}
	return false
}
