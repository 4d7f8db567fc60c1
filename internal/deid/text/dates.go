package text

import (
	"strings"
)

var months = map[string]int{
	"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
	"may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
	"sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}

var weekdays = map[string]bool{
	"monday": true, "mon": true, "tuesday": true, "tue": true, "tues": true, "wednesday": true,
	"wed": true, "thursday": true, "thu": true, "thur": true, "thurs": true, "friday": true,
	"fri": true, "saturday": true, "sat": true, "sunday": true, "sun": true,
}

// Words around a bare day/month pair such as 6/5 that say it is a date,
// and words that say it is a measurement (power 5/5, pain 3/10, BP 120/80).
var (
	dateWords = []string{"on", "since", "from", "until", "till", "through", "thru", "to", "by", "dated",
		"date", "dos", "dob", "f/u", "fu", "follow-up", "followup", "return", "next", "visit", "opd",
		"appointment", "appt", "scheduled", "admitted", "admission", "discharged", "discharge", "seen",
		"surgery", "birthday", "born", "예정", "검사일", "일자", "날짜", "면담", "외래", "재진", "퇴원",
		"입원", "수술", "내원", "방문", "예약", "시행", "제거", "생년월일", "생일"}
	// words after a bare day/month that make it a date: "8/21 through 8/23", "3/14(목) 재진"
	dateWordsAfter = []string{"through", "thru", "to", "until", "-", "~", "예정", "재진", "외래", "퇴원",
		"입원", "수술", "내원", "방문", "예약", "(월)", "(화)", "(수)", "(목)", "(금)", "(토)", "(일)", "(mon)",
		"(tue)", "(wed)", "(thu)", "(fri)", "(sat)", "(sun)"}
	measureWords = []string{"bp", "pressure", "power", "strength", "mmt", "pain", "nrs", "vas", "mmse",
		"moca", "gcs", "apgar", "murmur", "score", "ratio", "iop", "va", "acuity", "ast/alt", "bun/cr",
		"na/k", "grade", "abg", "cervix", "reflexes", "sbp", "dbp", "섭취", "점", "혈압", "근력", "통증",
		"vision", "x", "dilated", "ef", "lvef", "g", "p", "gp"}
	unitWords = []string{"mg", "mcg", "ug", "g", "ml", "l", "mmhg", "cm", "mm", "kg", "iu", "u", "units",
		"tab", "tabs", "tablet", "tablets", "pill", "pills", "dose", "doses", "cup", "of", "%", "times", "회", "정", "점", "cc", "mmol", "meq"}
	dobWords = []string{"dob", "d.o.b", "date of birth", "birth date", "birthdate", "born", "생년월일",
		"생일", "출생일", "출생"}
)

// findDates finds dates in numeric, English and Korean notations.
func findDates(d *doc, out []Finding) []Finding {
	out = weekdayOrdinals(d, out)
	out = compactMonthDates(d, out)
	out = numericDates(d, out)
	out = spacedDotDates(d, out)
	out = wordDates(d, out)
	return koreanDates(d, out)
}

// numericDates reads digit groups joined by one of "-./" and judges the
// shape: Y-M-D, M/D/Y or D/M/Y, Y.M, M/Y, or a bare M/D that needs context.
func numericDates(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || !boundedLeft(s, i, "-./:") {
			continue
		}
		g, end := dateGroups(s, i)
		if len(g) > 3 || !boundedRight(s, end, "") || followsMore(s, end) {
			i = end
			continue
		}
		if f, ok := judgeNumericDate(d, g, i, end); ok {
			out = append(out, f)
		}
		i = end
	}
	return out
}

// dateGroups reads up to four digit groups separated by the same one of
// "-./".
func dateGroups(s string, i int) (g []string, end int) {
	var sep byte
	for {
		e := digitRunEnd(s, i)
		g, end = append(g, s[i:e]), e
		if e+1 >= len(s) || !isDigit(s[e+1]) || strings.IndexByte("-./", s[e]) < 0 || len(g) == 4 {
			return g, end
		}
		if sep != 0 && s[e] != sep {
			return g, end
		}
		sep = s[e]
		i = e + 1
	}
}

// followsMore is true when the groups go on with another separator and
// digits of a different kind (7.38/42/88) or a decimal part.
func followsMore(s string, end int) bool {
	return end+1 < len(s) && strings.IndexByte("-./:", s[end]) >= 0 && isDigit(s[end+1])
}

func judgeNumericDate(d *doc, g []string, start, end int) (Finding, bool) {
	f := Finding{Kind: Date, Start: start, End: end}
	n := make([]int, len(g))
	for k := range g {
		n[k] = atoi(g[k])
	}
	sep := byte(0)
	if len(g) > 1 {
		sep = d.s[start+len(g[0])]
	}
	switch {
	case len(g) == 3 && len(g[0]) == 4 && len(g[1]) <= 2 && len(g[2]) <= 2:
		f.Confidence = ifValid(validDate(n[0], n[1], n[2]) && plausibleYear(n[0]), 0.95)
	case len(g) == 3 && len(g[0]) <= 2 && len(g[1]) <= 2 && (len(g[2]) == 4 || len(g[2]) == 2):
		y := fullYear(g[2])
		ok := validDate(y, n[0], n[1]) || validDate(y, n[1], n[0])
		if sep == '.' && len(g[2]) == 2 { // Korean 24.03.11: YY.MM.DD
			ok = ok || validDate(fullYear(g[0]), n[1], n[2])
		}
		f.Confidence = ifValid(ok && (len(g[2]) == 2 || plausibleYear(y)), 0.9)
	case len(g) == 2 && len(g[0]) == 4 && len(g[1]) <= 2 && sep != '/':
		f.Confidence = ifValid(plausibleYear(n[0]) && n[1] >= 1 && n[1] <= 12 && len(g[1]) == 2, 0.75)
	case len(g) == 2 && len(g[0]) <= 2 && len(g[1]) == 4 && sep == '/':
		f.Confidence = ifValid(plausibleYear(n[1]) && n[0] >= 1 && n[0] <= 12, 0.8)
	case len(g) == 2 && len(g[0]) <= 2 && len(g[1]) <= 2 && sep == '/':
		f.Confidence = bareDayMonth(d, n[0], n[1], start, end)
	case len(g) == 1 && (len(g[0]) == 8 || len(g[0]) == 6):
		f.Confidence = compactDate(d, g[0], start)
	}
	f.Start = withWeekday(d, f.Start)
	return f, f.Confidence > 0
}

func ifValid(ok bool, c float64) float64 {
	if ok {
		return c
	}
	return 0
}

func plausibleYear(y int) bool { return y >= 1880 && y <= 2100 }

func fullYear(g string) int {
	y := atoi(g)
	if len(g) == 2 {
		return 2000 + y // any year gives a valid leap check for two digits
	}
	return y
}

// bareDayMonth judges "6/5": a date only when words around it say so.
func bareDayMonth(d *doc, a, b, start, end int) float64 {
	if !(validDate(2000, a, b) || validDate(2000, b, a)) || a == 0 || b == 0 {
		return 0
	}
	bef := d.before(start, 32)
	aft := d.after(end, 16)
	if containsWord(lastClause(bef), measureWords) || startsWithAny(aft, unitWords) {
		return 0
	}
	conf := 0.3
	if containsWord(lastWords(bef, 3), dateWords) || weekdayBefore(bef) || timeAfter(aft) ||
		containsWord(firstWords(aft, 2), dateWordsAfter) || strings.TrimSpace(bef) == "" {
		conf = 0.8
	}
	return conf
}

// lastClause keeps the text after the last comma, semicolon or period.
func lastClause(s string) string {
	if k := strings.LastIndexAny(s, ",;"); k >= 0 {
		return s[k+1:]
	}
	return s
}

func lastWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[len(f)-n:]
	}
	return strings.Join(f, " ")
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

// startsWithAny reports whether s, after spaces, begins with one of words
// as a whole word.
func startsWithAny(s string, words []string) bool {
	s = strings.TrimLeft(s, " ")
	for _, w := range words {
		if hasWordPrefix(s, w) {
			return true
		}
	}
	return false
}

func weekdayBefore(bef string) bool {
	f := strings.Fields(bef)
	return len(f) > 0 && weekdays[strings.Trim(f[len(f)-1], ",.")]
}

func timeAfter(aft string) bool {
	a := strings.TrimLeft(aft, " ")
	return len(a) >= 4 && isDigit(a[0]) && (a[1] == ':' || len(a) >= 5 && isDigit(a[1]) && a[2] == ':')
}

// compactDate accepts YYYYMMDD or YYMMDD only after a birth-date label.
func compactDate(d *doc, g string, start int) float64 {
	if !containsWord(lastWords(d.before(start, 24), 3), dobWords) {
		return 0
	}
	if len(g) == 8 {
		return ifValid(validDate(atoi(g[:4]), atoi(g[4:6]), atoi(g[6:])) && plausibleYear(atoi(g[:4])), 0.9)
	}
	return ifValid(validDate(2000, atoi(g[2:4]), atoi(g[4:])), 0.85)
}

// withWeekday widens a date to a weekday written right before it
// ("Tuesday, May 14", "Monday 7/22").
func withWeekday(d *doc, start int) int {
	i := d.tokenAt(start)
	if i < 0 {
		return start
	}
	j, nl := d.prev(i)
	if j >= 0 && !nl && d.text(j) == "," {
		j, nl = d.prev(j)
	}
	if j >= 0 && !nl && d.toks[j].kind == tWord && lookup(weekdays, d.text(j)) {
		return d.toks[j].start
	}
	return start
}

// wordDates finds dates with an English month name: "March 14, 2021",
// "14 Mar 2021", "Sept 12", "March 2015", "April 8th".
func wordDates(d *doc, out []Finding) []Finding {
	for i, t := range d.toks {
		if t.kind != tWord || t.digits > 0 {
			continue
		}
		m, ok := monthWord(d.text(i))
		if !ok {
			continue
		}
		if f, ok := monthFirst(d, i, m); ok {
			out = append(out, f)
		}
		if f, ok := dayFirst(d, i, m); ok {
			out = append(out, f)
		}
	}
	return out
}

// monthWord accepts a capitalized month name or abbreviation (optionally
// followed by '.'); lower-case "may" and "march" are verbs.
func monthWord(w string) (int, bool) {
	if w[0] < 'A' || w[0] > 'Z' {
		return 0, false
	}
	m := lookup(months, w)
	return m, m > 0
}

// monthFirst: Month [.] D[st|nd|rd|th] [,] [YYYY] or Month YYYY.
func monthFirst(d *doc, i, m int) (Finding, bool) {
	j := skipDot(d, i)
	k, nl := d.next(j)
	if k < 0 || nl || d.toks[k].kind != tWord || d.toks[k].digits == 0 {
		return Finding{}, false
	}
	start := withWeekday(d, d.toks[i].start)
	if y := atoi(d.text(k)); len(d.text(k)) == 4 && plausibleYear(y) {
		return Finding{Kind: Date, Start: start, End: d.toks[k].end, Confidence: 0.85}, true
	}
	day, ok := dayNumber(d.text(k))
	if !ok || day > daysIn(2000, m) {
		return Finding{}, false
	}
	end, conf := d.toks[k].end, 0.85
	if y, yend := yearAfter(d, k); y > 0 {
		end, conf = yend, 0.95
	}
	return Finding{Kind: Date, Start: start, End: end, Confidence: conf}, true
}

// dayFirst: D Month [YYYY], also 14-Mar-2021.
func dayFirst(d *doc, i, m int) (Finding, bool) {
	j, nl := d.prev(i)
	if j >= 0 && !nl && strings.EqualFold(d.text(j), "of") {
		j, nl = d.prev(j)
	}
	if j >= 0 && (d.text(j) == "-" || d.text(j) == "/") && d.toks[j].end == d.toks[i].start {
		j, nl = j-1, false
	}
	if j < 0 || nl || d.toks[j].kind != tWord {
		return Finding{}, false
	}
	day, ok := dayNumber(d.text(j))
	if !ok || day > daysIn(2000, m) {
		return Finding{}, false
	}
	end, conf := skipDotEnd(d, i), 0.8
	if y, yend := yearAfter(d, skipDot(d, i)); y > 0 {
		end, conf = yend, 0.95
	}
	return Finding{Kind: Date, Start: d.toks[j].start, End: end, Confidence: conf}, true
}

// skipDot steps over the period of an abbreviated month ("Mar.").
func skipDot(d *doc, i int) int {
	if i+1 < len(d.toks) && d.text(i+1) == "." && len(d.text(i)) <= 4 {
		return i + 1
	}
	return i
}

func skipDotEnd(d *doc, i int) int { return d.toks[skipDot(d, i)].end }

// dayNumber reads 1-31 with an optional English ordinal suffix.
func dayNumber(w string) (int, bool) {
	e := digitRunEnd(w, 0)
	if e == 0 || e > 2 {
		return 0, false
	}
	switch w[e:] {
	case "", "st", "nd", "rd", "th", "ST", "ND", "RD", "TH":
	default:
		return 0, false
	}
	n := atoi(w[:e])
	return n, n >= 1 && n <= 31
}

// yearAfter reads "[,] YYYY" after token k on the same line.
func yearAfter(d *doc, k int) (int, int) {
	j, nl := d.next(k)
	if j >= 0 && !nl && (d.text(j) == "," || d.text(j) == "-" || d.text(j) == "/") {
		j, nl = d.next(j)
	}
	if j < 0 || nl {
		return 0, 0
	}
	w := d.text(j)
	if y := atoi(w); len(w) == 4 && plausibleYear(y) {
		return y, d.toks[j].end
	}
	return 0, 0
}

// koreanDates finds 2021년 3월 14일, 3월 14일, 2021년 3월 (with 초순, 중순,
// 하순, 초 or 말 after the month).
func koreanDates(d *doc, out []Finding) []Finding {
	for i := 0; i < len(d.toks); i++ {
		t := d.toks[i]
		if !t.allDigits() || i+1 >= len(d.toks) || d.toks[i+1].kind != tHangul {
			continue
		}
		if f, next, ok := koreanDateAt(d, i); ok {
			out = append(out, f)
			i = next
		}
	}
	return out
}

// koreanDateAt reads up to three number+unit pairs starting at token i.
func koreanDateAt(d *doc, i int) (Finding, int, bool) {
	var p koreanParts
	end, last := 0, i
	for k := i; k+1 < len(d.toks) && d.toks[k].allDigits() && d.toks[k+1].kind == tHangul; {
		if !p.take(d.text(k), d.text(k+1)) {
			break
		}
		end, last = d.toks[k+1].start+len("년"), k+1
		j, nl := d.next(k + 1)
		if j < 0 || nl || d.toks[k+1].end != end {
			break // a particle is glued to the unit: the date ends here
		}
		k = j
	}
	if p.m == 0 || p.y == 0 && p.d == 0 {
		return Finding{}, i, false
	}
	conf := 0.9
	if p.y > 0 && p.d > 0 {
		conf = 0.95
	}
	if p.d == 0 {
		end = withPeriodWord(d, last, end)
	}
	return Finding{Kind: Date, Start: d.toks[i].start, End: end, Confidence: conf}, last, true
}

type koreanParts struct{ y, m, d int }

// take accepts the next number and unit if it continues a date.
func (p *koreanParts) take(num, unit string) bool {
	n := atoi(num)
	switch {
	case strings.HasPrefix(unit, "년") && p.y == 0 && p.m == 0 && (len(num) == 4 || len(num) == 2):
		p.y = n
	case strings.HasPrefix(unit, "월") && p.m == 0 && n >= 1 && n <= 12 && !strings.HasPrefix(unit, "월간"):
		p.m = n
	case strings.HasPrefix(unit, "일") && p.m > 0 && p.d == 0 && n >= 1 && n <= daysIn(2000, p.m) && !dayCount(unit):
		p.d = n
	default:
		return false
	}
	return true
}

// dayCount is true for "일간", "일분", "일째": counts of days, not dates.
func dayCount(w string) bool {
	return strings.HasPrefix(w, "일간") || strings.HasPrefix(w, "일분") || strings.HasPrefix(w, "일째")
}

// withPeriodWord takes in 초순/중순/하순 written after a month.
func withPeriodWord(d *doc, last, end int) int {
	j, nl := d.next(last)
	if j < 0 || nl || d.toks[j].kind != tHangul {
		return end
	}
	switch w := d.text(j); {
	case strings.HasPrefix(w, "초순"), strings.HasPrefix(w, "중순"), strings.HasPrefix(w, "하순"):
		return d.toks[j].start + len("초순")
	}
	return end
}

// spacedDotDates finds the Korean administrative style "2024. 3. 14." and
// "2024. 3." (year, month and day each followed by a period and a space).
func spacedDotDates(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i+6 < len(s); i++ {
		if !isDigit(s[i]) || !boundedLeft(s, i, ".") || digitRunEnd(s, i)-i != 4 {
			continue
		}
		var n []int
		j := i
		for len(n) < 3 {
			e := digitRunEnd(s, j)
			if e == j || e-j > 4 || e >= len(s) || s[e] != '.' {
				break
			}
			n, j = append(n, atoi(s[j:e])), e+1
			if j >= len(s) || s[j] != ' ' || j+1 >= len(s) || !isDigit(s[j+1]) {
				break
			}
			j++
		}
		ok := len(n) == 3 && validDate(n[0], n[1], n[2]) || len(n) == 2 && n[1] >= 1 && n[1] <= 12
		if ok && plausibleYear(n[0]) {
			out = append(out, Finding{Kind: Date, Start: i, End: j, Confidence: 0.9})
			i = j
		}
	}
	return out
}

// weekdayOrdinals finds "Sunday the 12th" and "Monday, the 3rd".
func weekdayOrdinals(d *doc, out []Finding) []Finding {
	for i, t := range d.toks {
		if t.kind != tWord || !lookup(weekdays, d.text(i)) {
			continue
		}
		j, nl := d.next(i)
		if j >= 0 && !nl && d.text(j) == "," {
			j, nl = d.next(j)
		}
		if j < 0 || nl || !strings.EqualFold(d.text(j), "the") {
			continue
		}
		k, nl := d.next(j)
		if k < 0 || nl || d.toks[k].kind != tWord {
			continue
		}
		if day, ok := dayNumber(d.text(k)); ok && len(d.text(k)) > 2 && day > 0 {
			out = append(out, Finding{Kind: Date, Start: t.start, End: d.toks[k].end, Confidence: 0.75})
		}
	}
	return out
}

// compactMonthDates finds the "05MAR2024" and "5Mar24" notation of some
// record systems: day, a three-letter month and a year in one word.
func compactMonthDates(d *doc, out []Finding) []Finding {
	for i, t := range d.toks {
		if t.kind != tWord || t.digits < 3 || t.end-t.start < 6 || t.end-t.start > 9 {
			continue
		}
		w := d.text(i)
		e := digitRunEnd(w, 0)
		if e == 0 || e > 2 || len(w) < e+4 {
			continue
		}
		m := lookup(months, w[e:e+3])
		y := w[e+3:]
		if m == 0 || (len(y) != 2 && len(y) != 4) || atoi(y) < 0 || !validDate(2000, m, atoi(w[:e])) {
			continue
		}
		out = append(out, Finding{Kind: Date, Start: t.start, End: t.end, Confidence: 0.9})
	}
	return out
}
