package text

import (
	"strings"
)

// Context words, lower case, that make a nearby number more likely to be an
// identifier of the named kind.
var (
	phoneWords = []string{"tel", "tel.", "phone", "telephone", "fax", "cell", "mobile", "contact", "call",
		"callback", "called", "ph", "hp", "h.p", "pager", "연락처", "전화", "전화번호", "휴대전화", "휴대폰",
		"핸드폰", "팩스", "연락", "번호"}
	ssnWords = []string{"ssn", "ss#", "social security", "social security number", "soc sec"}
	rrnWords = []string{"주민등록번호", "주민번호", "주민등록", "외국인등록번호", "rrn", "resident registration",
		"resident registration number", "registration no", "생년월일"}
)

// maxGroups bounds how many digit groups readGroups keeps; no number it
// judges has more.
const maxGroups = 6

// groups is a run of digit groups joined by single separators, such as
// 010-1234-5678 or (617) 555-0143. Fixed arrays keep it off the heap.
type groups struct {
	start, end int
	n          int                 // groups read
	g          [maxGroups]string   // digit groups
	pos        [maxGroups]int      // byte offset of each group
	sep        [maxGroups - 1]byte // sep[k] stands between g[k] and g[k+1]; ')' after a parenthesized area code
	plus       bool                // the run started with '+'
	paren      bool                // the first group was in parentheses
}

func (r *groups) push(s string, i, e int) {
	r.g[r.n], r.pos[r.n], r.end = s[i:e], i, e
	r.n++
}

// readGroups reads digit groups at i. Separators are one of "-. " (a space
// only between groups of two or more digits); the first group may stand in
// parentheses.
func readGroups(s string, i int) (groups, bool) {
	r := groups{start: i}
	if s[i] == '+' {
		r.plus = true
		i++
	}
	if i < len(s) && s[i] == '(' {
		e := digitRunEnd(s, i+1)
		if e == i+1 || e >= len(s) || s[e] != ')' {
			return r, false
		}
		r.paren = true
		r.push(s, i+1, e)
		r.end = e + 1
		i = e + 1
		if i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return r, true
		}
		r.sep[0] = ')'
	}
	for {
		e := digitRunEnd(s, i)
		if e == i {
			return r, false
		}
		r.push(s, i, e)
		if r.n == maxGroups || e+1 >= len(s) || !isDigit(s[e+1]) || strings.IndexByte("-. ", s[e]) < 0 {
			return r, true
		}
		countryCode := r.plus && r.n == 1
		if s[e] == ' ' && (e-i < 2 && !countryCode || digitRunEnd(s, e+1)-(e+1) < 2) {
			return r, true
		}
		r.sep[r.n-1] = s[e]
		i = e + 1
	}
}

// cut keeps the first n groups.
func (r groups) cut(n int) groups {
	if n >= r.n {
		return r
	}
	r.n = n
	r.end = r.pos[n-1] + len(r.g[n-1])
	if r.paren && n == 1 {
		r.end++
	}
	return r
}

func (r groups) groups() []string { return r.g[:r.n] }

func (r groups) seps() []byte {
	if r.n == 0 {
		return nil
	}
	return r.sep[:r.n-1]
}

func (r groups) lens() []int {
	l := make([]int, r.n)
	for i, g := range r.groups() {
		l[i] = len(g)
	}
	return l
}

// sepsAll reports whether every separator is in set.
func (r groups) sepsAll(set string) bool {
	for _, c := range r.seps() {
		if strings.IndexByte(set, c) < 0 {
			return false
		}
	}
	return true
}

func (r groups) sameSeps() bool {
	for _, c := range r.seps() {
		if c != r.sep[0] {
			return false
		}
	}
	return true
}

// startsNumber reports whether a number may start at i: a digit, '+' or '('
// not glued to a word or another number.
func startsNumber(s string, i int) bool {
	c := s[i]
	if !isDigit(c) && c != '+' && c != '(' {
		return false
	}
	if c != '(' && !boundedLeft(s, i, "-./+#") {
		return false
	}
	return c != '+' && c != '(' || i+1 < len(s) && isDigit(s[i+1])
}

// findPhones finds Korean and North American telephone and fax numbers.
func findPhones(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i < len(s); i++ {
		if !startsNumber(s, i) {
			continue
		}
		r, ok := readGroups(s, i)
		if !ok {
			continue
		}
		r = r.cut(4) // a phone number has at most four groups
		if !boundedRight(s, r.end, "") || r.end < len(s)-1 && s[r.end] == '/' && isDigit(s[r.end+1]) {
			i = r.end
			continue
		}
		if conf := phoneConfidence(d, r); conf > 0 {
			out = append(out, Finding{Kind: Phone, Start: r.start, End: r.end, Confidence: conf})
		}
		i = max(i, r.end-1)
	}
	return out
}

func phoneConfidence(d *doc, r groups) float64 {
	ctx := containsWord(trimTail(d.before(r.start, 24), ":#.(-"), phoneWords)
	base := phoneShape(r)
	if l := r.lens(); base == 0 && ctx && len(l) == 1 && l[0] == 10 && r.g[0][0] >= '2' && !r.plus {
		base = 0.6 // ten bare digits after "Phone": a North American number
	}
	switch {
	case base == 0:
		return 0
	case ctx:
		return clamp(base + 0.25)
	}
	return base
}

// phoneShape scores the group pattern alone.
func phoneShape(r groups) float64 {
	g, l := r.groups(), r.lens()
	if r.plus {
		return intlShape(r)
	}
	if r.paren {
		switch {
		case len(g) == 3 && l[0] == 3 && l[1] == 3 && l[2] == 4:
			return 0.95
		case len(g) == 3 && krArea(g[0]) && (l[1] == 3 || l[1] == 4) && l[2] == 4,
			len(g) == 2 && krArea(g[0]) && (l[1] == 7 || l[1] == 8):
			return 0.9 // (02) 123-4567
		}
		return 0
	}
	if hasSpace(r.seps()) && !r.sameSeps() {
		return 0
	}
	weak := 0.0
	if r.n > 1 && r.sep[0] == ' ' {
		weak = 0.25 // spaces also separate counts and values
	}
	switch {
	case len(g) == 3 && krArea(g[0]) && (l[1] == 3 || l[1] == 4) && l[2] == 4 && r.sepsAll("-. "):
		return 0.95 - weak
	case len(g) == 1 && l[0] == 11 && strings.HasPrefix(g[0], "010"):
		return 0.8
	case len(g) == 2 && l[0] == 4 && l[1] == 4 && krRepresentative(g[0]) && r.sep[0] == '-':
		return 0.75
	case len(g) == 3 && l[0] == 3 && l[1] == 3 && l[2] == 4 && g[0][0] >= '2' && r.sepsAll("-."):
		return 0.9 - weak
	case len(g) == 4 && g[0] == "1" && l[1] == 3 && l[2] == 3 && l[3] == 4 && r.sepsAll("- "):
		return 0.9 - weak
	case len(g) == 2 && l[0] == 3 && l[1] == 4 && r.sep[0] == '-' && g[0][0] >= '2':
		return 0.35 // a seven-digit local number; needs context
	}
	return 0
}

func hasSpace(seps []byte) bool {
	for _, c := range seps {
		if c == ' ' {
			return true
		}
	}
	return false
}

// krArea is true for Korean area, mobile and internet-phone prefixes.
func krArea(g string) bool {
	switch {
	case g == "02":
		return true
	case len(g) == 3 && g[0] == '0':
		switch g[1] {
		case '1':
			return strings.IndexByte("016789", g[2]) >= 0
		case '3', '4', '5', '6':
			return g[2] >= '1' && g[2] <= '5'
		case '7':
			return g[2] == '0'
		}
	}
	return false
}

// krRepresentative matches nationwide numbers such as 1588-xxxx.
func krRepresentative(g string) bool {
	return g[0] == '1' && strings.IndexByte("568", g[1]) >= 0 && g[2] >= '0'
}

// intlShape scores numbers written with a country code.
func intlShape(r groups) float64 {
	g, l := r.groups(), r.lens()
	switch {
	case g[0] == "82" && len(g) >= 3:
		rest := "0" + g[1]
		if krArea(rest) && l[len(l)-1] == 4 {
			return 0.95
		}
	case g[0] == "1" && len(g) == 4 && l[1] == 3 && l[2] == 3 && l[3] == 4:
		return 0.95
	case len(g) >= 3 && l[0] <= 3 && sum(l) >= 9 && sum(l) <= 14:
		return 0.8
	}
	return 0
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

// findSSNs finds US social security numbers: AAA-GG-SSSS with the issuing
// rules (no 000, 666 or 9xx area, no 00 group, no 0000 serial), or nine
// digits after an SSN label.
func findSSNs(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || !boundedLeft(s, i, "-./") {
			continue
		}
		r, ok := readGroups(s, i)
		if !ok {
			continue
		}
		labeled := containsWord(trimTail(d.before(i, 32), ":#.(-"), ssnWords)
		if c := ssnConfidence(r, labeled); c > 0 && boundedRight(s, r.end, "-/") {
			out = append(out, Finding{Kind: SSN, Start: i, End: r.end, Confidence: c})
		}
		i = r.end
	}
	return out
}

func ssnConfidence(r groups, labeled bool) float64 {
	var a, g, n string
	switch l := r.lens(); {
	case len(l) == 3 && l[0] == 3 && l[1] == 2 && l[2] == 4 && r.sameSeps() && (r.sep[0] == '-' || labeled):
		a, g, n = r.g[0], r.g[1], r.g[2]
	case len(l) == 1 && l[0] == 9 && labeled:
		a, g, n = r.g[0][:3], r.g[0][3:5], r.g[0][5:]
	default:
		return 0
	}
	if a == "000" || a == "666" || a[0] == '9' || g == "00" || n == "0000" {
		return 0
	}
	if labeled {
		return 0.98
	}
	return 0.85
}

// findRRNs finds Korean resident (and alien) registration numbers,
// YYMMDD-GNNNNNN. The birth date must be a real date and G a sex/century
// digit 1-8. A valid check digit raises confidence but a bad one never
// rejects: numbers issued from October 2020 have none.
func findRRNs(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i+13 <= len(s); i++ {
		if !isDigit(s[i]) || !boundedLeft(s, i, "-./") {
			continue
		}
		end, digits, ok := rrnAt(s, i)
		if !ok {
			i = digitRunEnd(s, i)
			continue
		}
		labeled := containsWord(trimTail(d.before(i, 40), ":#.(-"), rrnWords)
		if c := rrnConfidence(digits, labeled, end-i == 13); c > 0 {
			out = append(out, Finding{Kind: RRN, Start: i, End: end, Confidence: c})
		}
		i = end
	}
	return out
}

// rrnAt reads 6 digits, an optional '-' or space, then 7 characters of
// which the first is a digit and the rest digits or '*' masks.
func rrnAt(s string, i int) (end int, digits string, ok bool) {
	if digitRunEnd(s, i)-i != 6 && digitRunEnd(s, i)-i != 13 {
		return 0, "", false
	}
	j := i + 6
	if j < len(s) && (s[j] == '-' || s[j] == ' ') {
		j++
	}
	if j+7 > len(s) || !isDigit(s[j]) {
		return 0, "", false
	}
	for k := j + 1; k < j+7; k++ {
		if !isDigit(s[k]) && s[k] != '*' {
			return 0, "", false
		}
	}
	if !boundedRight(s, j+7, "-*") {
		return 0, "", false
	}
	return j + 7, s[i:i+6] + s[j:j+7], true
}

func rrnConfidence(n string, labeled, bare bool) float64 {
	g := n[6]
	if g < '1' || g > '8' {
		return 0
	}
	century := 1900
	if strings.IndexByte("3478", g) >= 0 {
		century = 2000
	}
	if !validDate(century+atoi(n[0:2]), atoi(n[2:4]), atoi(n[4:6])) {
		return 0
	}
	conf := 0.85
	switch {
	case strings.Contains(n, "*"):
		conf = 0.9 // masked, but the birth date and sex still show
	case rrnCheckDigitOK(n):
		conf = 0.97
	}
	if bare && !labeled && conf < 0.97 {
		conf = 0.4 // thirteen bare digits: could be any number
	}
	if labeled {
		conf = max(conf, 0.97)
	}
	return conf
}

// rrnCheckDigitOK applies the pre-2020 weighted check digit.
func rrnCheckDigitOK(n string) bool {
	weights := [12]int{2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5}
	total := 0
	for k, w := range weights {
		total += int(n[k]-'0') * w
	}
	return (11-total%11)%10 == int(n[12]-'0')
}

func validDate(y, m, day int) bool {
	if m < 1 || m > 12 || day < 1 {
		return false
	}
	return day <= daysIn(y, m)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
