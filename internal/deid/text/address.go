package text

import (
	"strings"
	"unicode/utf8"
)

var streetSuffixes = map[string]bool{
	"street": true, "st": true, "avenue": true, "ave": true, "av": true, "road": true, "rd": true,
	"lane": true, "ln": true, "boulevard": true, "blvd": true, "drive": true, "dr": true,
	"court": true, "ct": true, "way": true, "place": true, "pl": true, "terrace": true, "ter": true,
	"circle": true, "cir": true, "parkway": true, "pkwy": true, "highway": true, "hwy": true,
	"square": true, "sq": true, "trail": true, "trl": true, "alley": true, "crescent": true,
	"row": true, "plaza": true, "pike": true, "path": true,
}

var directions = toSet(strings.Fields("N S E W NE NW SE SW North South East West"))

var aptWords = map[string]bool{"apt": true, "apartment": true, "suite": true, "ste": true,
	"unit": true, "fl": true, "floor": true, "room": true, "rm": true, "bldg": true}

// usStates are the two-letter postal abbreviations of US states and
// territories.
var usStates = toSet(strings.Fields(`AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA
	MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP`))

// Korean metropolitan and provincial names written without their suffix.
var krRegions = toSet(strings.Fields(`서울 부산 대구 인천 광주 대전 울산 세종 제주 경기 강원 충북 충남 전북
	전남 경북 경남 서울시 부산시 대구시 인천시 광주시 대전시 울산시 세종시 제주도`))

func toSet(ws []string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// findAddresses finds English street addresses ("1127 West Maple Avenue,
// Apt 4B, Dayton, OH") and Korean road and lot addresses ("서울특별시
// 강남구 테헤란로 123, 4층", "부산광역시 해운대구 우동 1408-3").
func findAddresses(d *doc, out []Finding) []Finding {
	for i, t := range d.toks {
		switch {
		case t.kind == tWord && (d.text(i) == "PO" || d.text(i) == "P.O" || strings.EqualFold(d.text(i), "box")):
			if f, ok := poBox(d, i); ok {
				out = append(out, f)
			}
		case t.allDigits() && t.end-t.start <= 6:
			if f, ok := streetAddress(d, i); ok {
				out = append(out, f)
			}
		case t.kind == tHangul:
			if f, ok := koreanAddress(d, i); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// streetAddress reads number, up to four name words and a street suffix,
// then an optional unit and ", City[, ST]".
func streetAddress(d *doc, i int) (Finding, bool) {
	if !boundedLeft(d.s, d.toks[i].start, "-./:") {
		return Finding{}, false
	}
	k, words := i, 0
	for words < 5 {
		j, nl := d.next(k)
		if j < 0 || nl || d.toks[j].kind != tWord || !streetWord(d.text(j)) {
			return Finding{}, false
		}
		k, words = j, words+1
		if words >= 2 && lookup(streetSuffixes, d.text(k)) {
			break
		}
	}
	if !lookup(streetSuffixes, d.text(k)) {
		return Finding{}, false
	}
	end := skipDotEnd(d, k)
	if j, nl := d.next(k); j >= 0 && !nl && directions[d.text(j)] && d.toks[k].end+1 == d.toks[j].start {
		end = skipDotEnd(d, j) // "Avenue NW"
	}
	end = addressUnit(d, end)
	end = cityState(d, end)
	return Finding{Kind: Address, Start: d.toks[i].start, End: end, Confidence: 0.9}, true
}

// streetWord accepts capitalized words, compass points, single letters and
// ordinals ("5th").
func streetWord(w string) bool {
	if isUpperByte(w[0]) {
		return true
	}
	_, ok := dayNumber(w)
	return ok && len(w) > 2
}

// addressUnit takes in ", Apt 4B", " Suite 1200", " #12".
func addressUnit(d *doc, end int) int {
	rest := d.s[end:]
	r := strings.TrimLeft(rest, ", ")
	if r == "" {
		return end
	}
	skip := len(rest) - len(r)
	if r[0] == '#' {
		e := runEnd(r, 1)
		if e > 1 {
			return end + skip + e
		}
		return end
	}
	w := wordAt(r)
	if !lookup(aptWords, strings.TrimSuffix(w, ".")) {
		return end
	}
	r2 := strings.TrimLeft(r[len(w):], " .#")
	e := runEnd(r2, 0)
	if e == 0 || countDigits(r2[:e]) == 0 {
		return end
	}
	return end + len(rest) - len(r2) + e
}

// cityState takes in ", City, ST" or ", City ST" (one to three capitalized
// words and a state abbreviation), or ", ST" alone.
func cityState(d *doc, end int) int {
	i := d.tokenAt(end)
	if i < 0 || d.text(i) != "," {
		return end
	}
	k := i
	for n := 0; n < 4; n++ {
		j, nl := d.next(k)
		if j < 0 || nl || d.toks[j].kind != tWord {
			return end
		}
		w := d.text(j)
		if usStates[w] {
			return d.toks[j].end
		}
		if !isUpperByte(w[0]) || d.toks[j].digits > 0 {
			return end
		}
		k = j
		if c, _ := d.next(k); c >= 0 && d.text(c) == "," {
			k = c
		}
	}
	return end
}

func wordAt(s string) string {
	e := 0
	for e < len(s) && (isWordByte(s[e]) && s[e] < 0x80 || s[e] == '.') {
		e++
	}
	return s[:e]
}

// runEnd returns the end of the run of letters, digits and '-' at i.
func runEnd(s string, i int) int {
	for i < len(s) && s[i] < 0x80 && (isWordByte(s[i]) || s[i] == '-') {
		i++
	}
	return i
}

// koreanAddress starts at a road name (…로, …길) or lot district (…동,
// …리, …가) followed by a building or lot number, and extends left over
// administrative units and right over building, floor and unit numbers.
func koreanAddress(d *doc, i int) (Finding, bool) {
	w := d.text(i)
	road := endsWithAny(w, "로", "길")
	lot := endsWithAny(w, "동", "리", "가") && utf8.RuneCountInString(w) >= 2
	if !road && !lot {
		return Finding{}, false
	}
	numEnd, ok := buildingNumber(d, i)
	if !ok {
		return Finding{}, false
	}
	start, units := adminUnitsBefore(d, i)
	conf := 0.0
	switch {
	case units > 0:
		conf = 0.9
	case road && utf8.RuneCountInString(w) >= 3:
		conf = 0.6
	}
	if lot && units == 0 {
		conf = 0
	}
	if conf == 0 {
		return Finding{}, false
	}
	return Finding{Kind: Address, Start: start, End: unitNumbers(d, numEnd), Confidence: conf}, true
}

func endsWithAny(w string, suffixes ...string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(w, s) {
			return true
		}
	}
	return false
}

// buildingNumber reads "123", "1408-3" or "12번길 4" after token i.
func buildingNumber(d *doc, i int) (int, bool) {
	j := i + 1
	if j < len(d.toks) && d.toks[j].kind == tSpace && !d.toks[j].newline {
		j++
	}
	if j >= len(d.toks) || !d.toks[j].allDigits() {
		return 0, false
	}
	end := d.toks[j].end
	if j+2 < len(d.toks) && d.text(j+1) == "-" && d.toks[j+2].allDigits() {
		end = d.toks[j+2].end
	}
	if j+1 < len(d.toks) && d.toks[j+1].kind == tHangul && strings.HasPrefix(d.text(j+1), "번길") {
		if e, ok := buildingNumber(d, j+1); ok {
			return e, true
		}
	}
	if !boundedRight(d.s, end, ".") {
		return 0, false
	}
	return end, true
}

// adminUnitsBefore extends left over 서울특별시, 강남구, 분당구, 읍/면/동.
func adminUnitsBefore(d *doc, i int) (int, int) {
	start, units := d.toks[i].start, 0
	for k := i; units < 5; {
		j, nl := d.prev(k)
		if j < 0 || nl || d.toks[j].kind != tHangul || !adminUnit(d.text(j)) {
			break
		}
		start, units, k = d.toks[j].start, units+1, j
	}
	return start, units
}

func adminUnit(w string) bool {
	if krRegions[w] {
		return true
	}
	return utf8.RuneCountInString(w) >= 2 && endsWithAny(w, "시", "도", "구", "군", "읍", "면", "동", "리")
}

// unitNumbers takes in ", 4층", ", 101동 1203호", " 3동 502호".
func unitNumbers(d *doc, end int) int {
	i := d.tokenAt(end)
	if i < 0 {
		return end
	}
	k := i
	if d.text(k) == "," {
		k++
	}
	for n := 0; n < 3; n++ {
		j := k
		if j < len(d.toks) && d.toks[j].kind == tSpace && !d.toks[j].newline {
			j++
		}
		if j+1 >= len(d.toks) || !d.toks[j].allDigits() || d.toks[j+1].kind != tHangul {
			break
		}
		u := d.text(j + 1)
		if u != "동" && u != "호" && u != "층" && u != "호실" {
			break
		}
		end, k = d.toks[j+1].end, j+2
	}
	return end
}

var postalWords = []string{"우편번호", "zip", "zip code", "zipcode", "postal code", "postcode", "우", "(우)", "우)"}

// findPostals finds five-digit postal codes (Korean and US ZIP, with an
// optional ZIP+4) next to an address, after a state abbreviation or after
// a postal label. A five-digit number alone is too common to take.
func findPostals(d *doc, out []Finding) []Finding {
	s := d.s
	addrEnds := map[int]bool{}
	for _, f := range out {
		if f.Kind == Address {
			addrEnds[f.End] = true
		}
	}
	for i := 0; i+5 <= len(s); i++ {
		if !isDigit(s[i]) || !boundedLeft(s, i, "-./") {
			continue
		}
		e := digitRunEnd(s, i)
		if e-i != 5 {
			i = e
			continue
		}
		end := e
		if e+5 <= len(s) && s[e] == '-' && digitRunEnd(s, e+1) == e+5 {
			end = e + 5
		}
		if !boundedRight(s, end, "-/") || end+1 < len(s) && s[end] == '.' && isDigit(s[end+1]) {
			i = end
			continue
		}
		if c := postalConfidence(d, i, addrEnds); c > 0 {
			out = append(out, Finding{Kind: Postal, Start: i, End: end, Confidence: c})
		}
		i = end
	}
	return out
}

func postalConfidence(d *doc, start int, addrEnds map[int]bool) float64 {
	b := d.before(start, 24)
	if containsWord(lastWords(trimTail(b, ":#(-"), 2), postalWords) {
		return 0.95
	}
	gap := len(b) - len(strings.TrimRight(b, " ,(["))
	if addrEnds[start-gap] && gap <= 3 {
		return 0.9
	}
	f := strings.Fields(trimTail(d.s[max(0, start-8):start], ","))
	if len(f) > 0 && usStates[strings.TrimSuffix(f[len(f)-1], ",")] {
		return 0.85
	}
	return 0
}

// poBox reads "PO Box 1234" or "P.O. Box 1234", then ", City, ST".
func poBox(d *doc, i int) (Finding, bool) {
	start := d.toks[i].start
	k := i
	if !strings.EqualFold(d.text(k), "box") {
		j, nl := d.next(skipDot(d, k))
		if j < 0 || nl || !strings.EqualFold(d.text(j), "box") {
			return Finding{}, false
		}
		k = j
	} else if p, nl := d.prev(i); p >= 0 && !nl && strings.HasPrefix(strings.ToUpper(d.s[d.toks[p].start:d.toks[i].start]), "P") {
		return Finding{}, false // the box was read with its "PO" already
	}
	j, nl := d.next(k)
	if j < 0 || nl || !d.toks[j].allDigits() {
		return Finding{}, false
	}
	return Finding{Kind: Address, Start: start, End: cityState(d, d.toks[j].end), Confidence: 0.85}, true
}
