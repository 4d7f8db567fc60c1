package text

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unicode/utf8"
)

// surrogates chooses fake values with HMAC-SHA-256 under a secret, so a
// value always maps to the same surrogate under the same secret and the
// mapping cannot be reversed or recomputed without it.
type surrogates struct {
	macs  sync.Pool // of hash.Hash: HMAC-SHA-256 keyed with the secret
	shift int       // days added to every date
}

func newSurrogates(secret []byte, shiftDays int) *surrogates {
	key := append([]byte(nil), secret...)
	s := &surrogates{shift: shiftDays}
	s.macs.New = func() any { return hmac.New(sha256.New, key) }
	if s.shift == 0 {
		s.shift = -1 - int(s.stream("date-shift", "").next()%365)
	}
	return s
}

// keyStream yields pseudo-random numbers derived from one (kind, value)
// pair: block i is HMAC(secret, kind 0 value 0 i16).
type keyStream struct {
	s     *surrogates
	key   string
	block int
	buf   []byte
}

func (s *surrogates) stream(kind, value string) *keyStream {
	return &keyStream{s: s, key: kind + "\x00" + value}
}

func (k *keyStream) next() uint64 {
	if len(k.buf) < 8 {
		m := k.s.macs.Get().(hash.Hash)
		m.Reset() // a reset HMAC keeps its keyed state: no new key schedule
		m.Write([]byte(k.key))
		m.Write([]byte{0, byte(k.block >> 8), byte(k.block)})
		k.block++
		k.buf = m.Sum(k.buf[:0])
		k.s.macs.Put(m)
	}
	v := binary.BigEndian.Uint64(k.buf[:8])
	k.buf = k.buf[8:]
	return v
}

// intn returns a number in [0, n).
func (k *keyStream) intn(n int) int { return int(k.next() % uint64(n)) }

// noteSurrogates remembers, for one note, which surrogate each name part
// got, so "Robert Alvarez" and a later "Mr. Alvarez" stay the same person.
type noteSurrogates struct {
	s     *surrogates
	parts map[string]string // original name part -> surrogate part
}

func (s *surrogates) forNote(text string, fs []Finding) *noteSurrogates {
	n := &noteSurrogates{s: s, parts: map[string]string{}}
	// Full names first, so that their parts are known before single-word
	// mentions are replaced.
	for _, f := range fs {
		if f.Kind == Name && isFullName(f.Text) {
			n.name(f.Text)
		}
	}
	return n
}

func (n *noteSurrogates) replace(f Finding) string {
	switch f.Kind {
	case Name:
		return n.name(f.Text)
	case Date:
		return n.s.date(f.Text)
	case Age:
		return "90" // Safe Harbor aggregates ages over 89
	case Phone:
		return n.s.phone(f.Text)
	case Email:
		return n.s.email(f.Text)
	case URL:
		return n.s.url(f.Text)
	case IP:
		return n.s.ip(f.Text)
	case Address:
		return n.s.address(f.Text)
	case RRN:
		return n.s.rrn(f.Text)
	case SSN:
		return n.s.ssn(f.Text)
	}
	return n.s.code(string(f.Kind), f.Text)
}

// code replaces each digit and letter of an identifier with a keyed one of
// the same class, keeping length, case and punctuation; GS1 application
// identifiers "(01)" keep their digits.
func (s *surrogates) code(kind, v string) string {
	k := s.stream(kind, v)
	b := []byte(v)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '(' && i+3 < len(b) && b[i+3] == ')':
			i += 3
		case isDigit(c):
			b[i] = byte('0' + k.intn(10))
		case c >= 'A' && c <= 'Z':
			b[i] = byte('A' + k.intn(26))
		case c >= 'a' && c <= 'z':
			b[i] = byte('a' + k.intn(26))
		}
	}
	return string(b)
}

// digitsFrom rewrites the digits of v from position start on.
func (s *surrogates) digitsFrom(kind, v string, start int) string {
	k := s.stream(kind, v)
	b := []byte(v)
	for i := start; i < len(b); i++ {
		if isDigit(b[i]) {
			b[i] = byte('0' + k.intn(10))
		}
	}
	return string(b)
}

// phone keeps the country code and the Korean area or mobile prefix (they
// say little) and the layout, and replaces the subscriber digits. North
// American numbers become 555-01xx numbers, which are reserved for fiction.
func (s *surrogates) phone(v string) string {
	if d := onlyDigits(v); !strings.HasPrefix(d, "0") && !strings.HasPrefix(d, "82") && (len(d) == 10 || len(d) == 11 && d[0] == '1') {
		return s.northAmerican(v, d)
	}
	keep := 0
	t := strings.TrimPrefix(v, "+")
	off := len(v) - len(t)
	if strings.HasPrefix(t, "82") || strings.HasPrefix(t, "1") && off == 1 {
		keep = off + strings.IndexAny(t, " -.")
		if keep < off {
			keep = off
		}
	}
	rest := v[keep:]
	if r := strings.TrimLeft(rest, " -.()"); strings.HasPrefix(r, "0") || keep > 0 && strings.HasPrefix(r, "1") {
		e := digitRunEnd(r, 0)
		keep += len(rest) - len(r) + e
	}
	return s.digitsFrom("PHONE", v, keep)
}

func (s *surrogates) ssn(v string) string {
	out := []byte(s.code("SSN", v))
	out[0] = '9' // area 9xx is never issued, so the surrogate is never a real SSN
	return string(out)
}

// rrn keeps the layout, the sex/century digit and any masking, moves the
// birth date by the date shift and writes a check digit that is wrong on
// purpose, so that a surrogate cannot be a real pre-2020 number.
func (s *surrogates) rrn(v string) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '*' {
			return r
		}
		return -1
	}, v)
	if len(digits) != 13 {
		return s.code("RRN", v)
	}
	century := 1900
	if strings.IndexByte("3478", digits[6]) >= 0 {
		century = 2000
	}
	y, m, d := century+atoi(digits[:2]), atoi(digits[2:4]), atoi(digits[4:6])
	ny, nm, nd := shiftDate(y, m, d, s.shift)
	out := fmt.Sprintf("%02d%02d%02d%c", ny%100, nm, nd, digits[6])
	k := s.stream("RRN", v)
	for _, c := range digits[7:12] {
		if c == '*' {
			out += "*"
		} else {
			out += string(rune('0' + k.intn(10)))
		}
	}
	if digits[12] == '*' {
		out += "*"
	} else {
		good := 0
		if !strings.Contains(out, "*") {
			good = checkDigit(out)
		}
		out += string(rune('0' + (good+1+k.intn(9))%10))
	}
	return relayout(v, out)
}

func checkDigit(n12 string) int {
	weights := [12]int{2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5}
	t := 0
	for i, w := range weights {
		t += int(n12[i]-'0') * w
	}
	return (11 - t%11) % 10
}

// relayout puts the characters of repl into the digit and mask positions of
// orig, keeping its separators.
func relayout(orig, repl string) string {
	b := []byte(orig)
	j := 0
	for i := range b {
		if (isDigit(b[i]) || b[i] == '*') && j < len(repl) {
			b[i] = repl[j]
			j++
		}
	}
	return string(b)
}

func (s *surrogates) email(v string) string {
	k := s.stream("EMAIL", v)
	l := lex()
	first := strings.ToLower(l.firstList[k.intn(len(l.firstList))])
	last := strings.ToLower(l.surnameList[k.intn(len(l.surnameList))])
	return fmt.Sprintf("%s.%s%d@example.org", first, strings.ReplaceAll(last, "'", ""), k.intn(90)+10)
}

func (s *surrogates) url(v string) string {
	k := s.stream("URL", v)
	scheme := "https://"
	if strings.HasPrefix(strings.ToLower(v), "http://") {
		scheme = "http://"
	}
	return fmt.Sprintf("%sportal.example.org/r/%08x", scheme, uint32(k.next()))
}

// ip maps IPv4 into 10.0.0.0/8 and IPv6 into the documentation prefix
// 2001:db8::/32.
func (s *surrogates) ip(v string) string {
	k := s.stream("IP", v)
	if strings.Contains(v, ":") {
		return fmt.Sprintf("2001:db8:%x:%x::%x", k.intn(1<<16), k.intn(1<<16), k.intn(1<<16)+1)
	}
	return fmt.Sprintf("10.%d.%d.%d", k.intn(256), k.intn(256), k.intn(254)+1)
}

var (
	koCities  = []string{"서울특별시 강서구", "서울특별시 노원구", "부산광역시 사하구", "인천광역시 남동구", "대구광역시 북구", "대전광역시 서구", "광주광역시 남구", "경기도 수원시 장안구", "경기도 고양시 덕양구", "충청북도 청주시 흥덕구", "전라북도 전주시 완산구", "경상남도 창원시 의창구"}
	koRoads   = []string{"은행나무로", "푸른숲길", "새봄로", "한빛대로", "솔내길", "하늘마루로", "미리내길", "가람로", "누리대로", "별빛로", "샘터길", "햇살로"}
	usStreets = []string{"Oak", "Maple", "Cedar", "Pine", "Elm", "Willow", "Chestnut", "Lakeview", "Hillcrest", "Meadow", "Sunset", "Riverside"}
	usSuffix  = []string{"Street", "Avenue", "Road", "Lane", "Drive", "Court"}
	usCities  = []string{"Springfield, IL", "Fairview, OR", "Riverton, WY", "Georgetown, TX", "Salem, MA", "Franklin, TN", "Clinton, IA", "Madison, WI"}
)

// address builds a fictitious address in the script of the original.
func (s *surrogates) address(v string) string {
	k := s.stream("ADDRESS", v)
	if r, _ := utf8.DecodeRuneInString(v); isHangulSyllable(r) || strings.ContainsFunc(v, isHangulSyllable) {
		return fmt.Sprintf("%s %s %d", koCities[k.intn(len(koCities))], koRoads[k.intn(len(koRoads))], 1+k.intn(300))
	}
	return fmt.Sprintf("%d %s %s, %s", 1+k.intn(9800), usStreets[k.intn(len(usStreets))],
		usSuffix[k.intn(len(usSuffix))], usCities[k.intn(len(usCities))])
}

// Common Korean given names for surrogates, in Hangul and romanized.
var (
	koGivenNames = []string{"민준", "서준", "도윤", "예준", "시우", "하준", "주원", "지호", "지후", "준우",
		"서연", "서윤", "지우", "서현", "하은", "하윤", "민서", "지유", "윤서", "채원", "영수", "영희",
		"정숙", "순자", "성호", "미경", "현우", "은지", "동현", "수진"}
	koGivenRoman = []string{"Min-jun", "Seo-jun", "Do-yun", "Ye-jun", "Si-woo", "Ha-jun", "Ju-won",
		"Ji-ho", "Ji-hu", "Jun-woo", "Seo-yeon", "Seo-yun", "Ji-woo", "Seo-hyun", "Ha-eun", "Ha-yun",
		"Min-seo", "Ji-yu", "Yun-seo", "Chae-won", "Young-soo", "Young-hee", "Jung-sook", "Soon-ja",
		"Sung-ho", "Mi-kyung", "Hyun-woo", "Eun-ji", "Dong-hyun", "Su-jin"}
)

// name picks a surrogate name in the script and shape of the original and
// records its parts for later mentions in the same note.
func (n *noteSurrogates) name(v string) string {
	if r, _ := utf8.DecodeRuneInString(v); isHangulSyllable(r) {
		return n.hangulName(v)
	}
	parts := strings.Fields(strings.ReplaceAll(v, ",", " ,"))
	given := 0
	if len(parts) >= 3 && parts[1] == "," {
		given = 2 // "Kowalczyk, Anna"
	}
	korean := isRomanizedKorean(parts)
	k := n.s.stream("NAME", strings.ToLower(v))
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = n.latinPart(p, i == given, len(parts) == 1, korean, k)
	}
	return strings.ReplaceAll(strings.Join(out, " "), " ,", ",")
}

// latinPart replaces one word of a name. Family names are keyed by
// themselves, so that "Mr. Alvarez" in another note is the same person;
// Korean family names stay Korean ("Dr. Kim" -> "Dr. Choi").
func (n *noteSurrogates) latinPart(p string, given, single, korean bool, k *keyStream) string {
	if p == "," {
		return p
	}
	if got, ok := n.parts[p]; ok {
		return got
	}
	l := lex()
	var repl string
	switch lp := strings.ToLower(p); {
	case len(p) == 2 && p[1] == '.': // initial
		repl = string(rune('A'+k.intn(26))) + "."
	case korean && koreanGiven(p) > 0 && !isKoSurnameRoman(p):
		repl = koGivenRoman[n.s.stream("KOGIVEN", lp).intn(len(koGivenRoman))]
	case isKoSurnameRoman(p) && (korean || !given || single):
		repl = l.koRomanList[n.s.stream("KOSUR", lp).intn(min(30, len(l.koRomanList)))]
	case given && !single || single && has(l.firstNames, p):
		repl = givenLike(p, n.s.stream("FIRST", lp))
	default:
		repl = l.surnameList[n.s.stream("LAST", lp).intn(len(l.surnameList))]
	}
	if allUpper(p) && len(p) > 2 {
		repl = strings.ToUpper(repl)
	}
	n.parts[p] = repl
	return repl
}

// givenLike picks a given name of the same sex as p when the lists know
// it, so that "her daughter Karen" stays a daughter.
func givenLike(p string, k *keyStream) string {
	l := lex()
	switch {
	case has(l.female, p):
		return l.femaleList[k.intn(len(l.femaleList))]
	case has(l.firstNames, p):
		return l.maleList[k.intn(len(l.maleList))]
	}
	return l.firstList[k.intn(len(l.firstList))]
}

func (n *noteSurrogates) hangulName(v string) string {
	if got, ok := n.parts[v]; ok {
		return got
	}
	l := lex()
	r := []rune(v)
	sl := 1
	if len(r) > 2 && l.koSurnames[string(r[:2])] {
		sl = 2
	}
	sur := string(r[:sl])
	k := n.s.stream("NAME", v)
	newSur, ok := n.parts[sur]
	if !ok {
		newSur = l.koSurList[7+n.s.stream("KOSUR", sur).intn(min(40, len(l.koSurList)-7))] // skip the rare compound ones
		n.parts[sur] = newSur
	}
	given := ""
	switch len(r) - sl {
	case 0:
		return newSur
	case 1:
		given = string(l.koGivenList[k.intn(len(l.koGivenList))])
	default:
		given = koGivenNames[k.intn(len(koGivenNames))]
	}
	n.parts[v] = newSur + given
	return newSur + given
}

func isFullName(v string) bool {
	if r, _ := utf8.DecodeRuneInString(v); isHangulSyllable(r) {
		return utf8.RuneCountInString(v) >= 3
	}
	return strings.ContainsAny(v, " ,")
}

func isKoSurnameRoman(p string) bool {
	_, ok := lex().koRoman[strings.ToLower(p)]
	return ok
}

func isRomanizedKorean(parts []string) bool {
	for _, p := range parts {
		if strings.Contains(p, "-") && koreanGiven(p) == 2 {
			return true
		}
	}
	return false
}

func onlyDigits(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, v)
}

// northAmerican writes NXX-555-01XX in the layout of v.
func (s *surrogates) northAmerican(v, d string) string {
	k := s.stream("PHONE", v)
	repl := fmt.Sprintf("%d%02d5550%03d", 2+k.intn(8), k.intn(100), 100+k.intn(100))
	if len(d) == 11 {
		repl = "1" + repl
	}
	return relayout(v, repl)
}
