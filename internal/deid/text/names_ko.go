package text

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Korean context words. Labels stand before a name ("환자 성명: 한상철",
// "보호자(딸) 이서연"); titles follow it, glued or after a space ("김민수님",
// "박지훈 교수님").
var (
	koLabelWords = []string{"환자", "환아", "환자명", "환자성명", "성명", "이름", "수검자", "신청인", "참여자",
		"보호자", "담당의", "주치의", "집도의", "보조의", "처방의", "판독의", "의사", "간호사", "치료사",
		"요양보호사", "남편", "아내", "처", "배우자", "딸", "아들", "모", "부", "어머니", "아버지", "엄마",
		"아빠", "손녀", "손자", "며느리", "사위", "조카", "언니", "오빠", "형", "누나", "동생", "장남",
		"장녀", "차남", "차녀", "동거인", "보증인", "예금주", "연대보증인", "대리인", "서명", "본인",
		"마취의", "연구책임자", "담당", "당직의", "전공의", "직원", "의뢰의", "부친", "모친", "산모",
		"판독", "담당자", "상담자", "작성자", "통역사", "간호팀장", "팀장", "환자분", "시행의", "검사자",
		"기록자", "확인자", "신고자", "피보험자", "가입자", "수진자", "성함", "이름은", "환자는", "참여자명",
		"보호자명", "신청인명", "가족", "친구", "이웃", "지인", "할머니", "할아버지", "증인", "작성",
		"진료의", "담당간호사", "책임간호사", "수간호사", "교수", "선생님"}
	koLabels = newWordList(koLabelWords...)
	koTitles = []string{"님", "씨", "환자", "환아", "선생님", "선생", "교수님", "교수", "간호사", "보호자",
		"군", "양", "과장", "원장", "사장님", "사장", "팀장", "부장", "실장", "주임", "전공의", "레지던트",
		"인턴", "약사", "할머니", "할아버지", "어르신", "여사님", "여사", "드림", "올림", "경장", "경위",
		"경사", "경감", "대표", "이사", "주무관", "치료사", "님께", "전임의"}
	koParticles = toSet(strings.Fields(`은 는 이 가 을 를 의 에게 께 께서 와 과 도 만 한테 랑 이랑 하고 에
		에서 으로 로 이다 이며 이고 이나 이랑은 에게서 한테서 처럼 보다 까지 부터 이가 이는 이를 이의
		이와 이도 이에게`))
	// departments written before a name: "심장내과 장준영 드림"
	notDepartments = toSet([]string{"결과", "효과", "경과", "사과", "교과", "통과", "초과", "성과", "이과",
		"확실", "상실", "소실", "손실", "심실", "과실", "현실", "사실", "병실", "입실", "퇴실", "화장실", "진료실"})
)

// hangulNames finds names written in Hangul: a family name and a one- or
// two-syllable given name, optionally followed by a title or particle.
func hangulNames(d *doc, out []Finding) []Finding {
	for i, t := range d.toks {
		if t.kind != tHangul {
			continue
		}
		if f, ok := hangulName(d, i); ok {
			out = append(out, f)
		}
		if f, ok := surnameWithTitle(d, i); ok {
			out = append(out, f)
		}
	}
	return out
}

// hangulName tries each split of token i into family name, given name and
// rest, and keeps the best scoring one.
func hangulName(d *doc, i int) (Finding, bool) {
	w := d.text(i)
	r := []rune(w)
	best := Finding{}
	for _, sl := range []int{2, 1} {
		if len(r) < sl+1 || !lex().koSurnames[string(r[:sl])] {
			continue
		}
		for _, gl := range []int{2, 1} {
			if len(r) < sl+gl {
				continue
			}
			name, rest := string(r[:sl+gl]), string(r[sl+gl:])
			conf, ok := scoreHangul(d, i, r[:sl+gl], sl, rest)
			if ok && conf > best.Confidence {
				start := d.toks[i].start
				best = Finding{Kind: Name, Start: start, End: start + len(name), Confidence: conf}
			}
		}
	}
	return best, best.Confidence > floor
}

func scoreHangul(d *doc, i int, name []rune, sl int, rest string) (float64, bool) {
	titled := startsWithTitle(rest)
	if rest != "" && !titled && !koParticles[rest] || gluedToLatin(d, i) || exactStopword(name, d.text(i), rest) {
		return 0, false
	}
	after := 0.5
	if !titled {
		after = koAfter(d, i)
	}
	given := name[sl:]
	if len(given) == 1 && after == 0 {
		return 0, false // a two-syllable name needs a title or shorthand after it
	}
	base := givenScore(given)
	if sl == 1 && strings.ContainsRune("김이박최정강조윤장임", name[0]) {
		base += 0.05
	}
	if len(name) > 2 && lex().koStop[string(name[:2])] {
		base -= 0.35
	}
	return clamp(base + koBefore(d, d.toks[i].start) + after), true
}

// frequentGiven are the syllables most often seen in Korean given names;
// a name made of them needs less context.
var frequentGiven = "민수서연지현준영희정진우혜은경호성재윤아주하훈석철숙순미자옥선동상태승용원기광명혁환빈유예채다나린규찬"

func givenScore(given []rune) float64 {
	base := 0.3
	if len(given) == 1 {
		base = 0.05
	}
	frequent := true
	for _, g := range given {
		if !lex().koGiven[g] {
			base -= 0.15
		} else {
			base += 0.05
		}
		frequent = frequent && strings.ContainsRune(frequentGiven, g)
	}
	if frequent && len(given) == 2 {
		base += 0.05
	}
	return base
}

// exactStopword is true when the name or the whole token (without its
// particle) is an ordinary word.
func exactStopword(name []rune, token, rest string) bool {
	s := lex().koStop
	return s[string(name)] || s[token] || s[strings.TrimSuffix(token, rest)]
}

// gluedToLatin is true for Hangul written right after Latin letters or
// digits ("X선상", "3동"): a suffix, not a name.
func gluedToLatin(d *doc, i int) bool {
	return i > 0 && d.toks[i-1].kind == tWord
}

func startsWithTitle(rest string) bool {
	for _, t := range koTitles {
		if strings.HasPrefix(rest, t) {
			return true
		}
	}
	return false
}

// koBefore scores the label before a Hangul name.
func koBefore(d *doc, start int) float64 {
	b := trimTail(d.before(start, 40), ":,()/-")
	if koLabels.ends(b) {
		return 0.45
	}
	if titleBefore(d, start) {
		return 0.5
	}
	if labelBeforeName(d, start, nameLabels) {
		return 0.45
	}
	if departmentBefore(b) || aliasAfterLatinName(d.before(start, 40)) {
		return 0.3
	}
	return 0
}

// aliasAfterLatinName is true for "Song Min-ji (송민지": a Hangul name in
// parentheses right after a name written in Latin letters.
func aliasAfterLatinName(b string) bool {
	if !strings.HasSuffix(strings.TrimRight(b, " "), "(") {
		return false
	}
	f := strings.Fields(strings.TrimSuffix(strings.TrimRight(b, " "), "("))
	return len(f) > 0 && koreanGiven(f[len(f)-1]) == 2 && strings.Contains(f[len(f)-1], "-")
}

// recordAfter is true when a record number follows the name: "김민수
// (MRN 12345678)", "Pt: 김민수 / 등록번호".
func recordAfter(a string) bool {
	a = strings.TrimLeft(a, " ,/(")
	for _, w := range []string{"mrn", "등록번호", "환자번호", "병록번호", "chart", "dob", "생년월일"} {
		if strings.HasPrefix(a, w) {
			return true
		}
	}
	return false
}

// departmentBefore is true after a department, team or ward: "심장내과",
// "QI팀", "상담실", "암센터", "3병동".
func departmentBefore(b string) bool {
	f := strings.Fields(b)
	if len(f) == 0 {
		return false
	}
	w := f[len(f)-1]
	return endsWithAny(w, "과", "팀", "실", "센터", "병동") && utf8.RuneCountInString(w) >= 2 && !notDepartments[w]
}

// koAfter scores what follows a Hangul name token: a title after a space,
// or the age/sex and relation shorthand "(M/34)", "(남/67세)", "(언니)".
func koAfter(d *doc, i int) float64 {
	j := i + 1
	if j < len(d.toks) && d.toks[j].kind == tSpace && !d.toks[j].newline && d.toks[j].end-d.toks[j].start <= 2 {
		j++
	}
	if j < len(d.toks) && d.toks[j].kind == tHangul && j != i+1 && startsWithTitle(d.text(j)) {
		return 0.5
	}
	a := d.after(d.toks[i].end, 24)
	if ageSexShorthand(a) || recordAfter(a) {
		return 0.4
	}
	a = strings.TrimLeft(a, " ")
	if strings.HasPrefix(a, "(") {
		inner := strings.TrimPrefix(a, "(")
		for _, l := range koLabelWords {
			if strings.HasPrefix(inner, l+")") {
				return 0.4
			}
		}
	}
	return 0
}

// gluedTitles may follow a lone family name without a space: "김씨가",
// "최간호사". 교수 and 사장 are left out: 조교수, 부교수, 이사장 are words.
var gluedTitles = []string{"씨", "선생님", "간호사", "할머니", "할아버지", "과장님", "원장님", "여사"}

// surnameWithTitle finds a family name alone before a title: "김 사장님",
// "박 교수", "김씨".
func surnameWithTitle(d *doc, i int) (Finding, bool) {
	w := d.text(i)
	if r, n := utf8.DecodeRuneInString(w); lex().koSurnames[string(r)] && len(w) > n && !gluedToLatin(d, i) {
		for _, t := range gluedTitles {
			if strings.HasPrefix(w[n:], t) {
				return Finding{Kind: Name, Start: d.toks[i].start, End: d.toks[i].start + n, Confidence: 0.65}, true
			}
		}
	}
	if !lex().koSurnames[w] || utf8.RuneCountInString(w) != 1 {
		return Finding{}, false
	}
	if titleBefore(d, d.toks[i].start) { // "Dr. 박"
		return Finding{Kind: Name, Start: d.toks[i].start, End: d.toks[i].end, Confidence: 0.7}, true
	}
	j := i + 1
	if j+1 >= len(d.toks) || d.toks[j].kind != tSpace || d.toks[j].newline || d.toks[j+1].kind != tHangul {
		return Finding{}, false
	}
	t := d.text(j + 1)
	for _, title := range []string{"사장", "선생", "교수", "씨", "님", "과장", "원장", "간호사", "할머니", "할아버지", "여사", "대표", "기사"} {
		if strings.HasPrefix(t, title) {
			return Finding{Kind: Name, Start: d.toks[i].start, End: d.toks[i].end, Confidence: 0.7}, true
		}
	}
	return Finding{}, false
}

// A romanized Korean syllable: initial consonant(s), an optional glide,
// a vowel and an optional final ("min", "seo", "yeon", "hyun", "kwang").
var romanSyllable = regexp.MustCompile(`^(?:kk|gg|tt|pp|ss|jj|ch|sh|[gkndtrlmbpsjhc])?[yw]?(?:eo|eu|ae|ee|oe|oo|ou|ui|oi|a|e|i|o|u)(?:ng|[kgntlrmpbh])?$`)

// koreanGiven returns the number of syllables (1 or 2) of a romanized
// Korean given name such as "Min-su", "Minsu" or "Jun", or 0.
func koreanGiven(w string) int {
	lw := strings.ToLower(w)
	if a, b, ok := strings.Cut(lw, "-"); ok {
		if romanSyllable.MatchString(a) && romanSyllable.MatchString(b) {
			return 2
		}
		return 0
	}
	if romanSyllable.MatchString(lw) {
		return 1
	}
	for k := 1; k < len(lw); k++ {
		if romanSyllable.MatchString(lw[:k]) && romanSyllable.MatchString(lw[k:]) {
			return 2
		}
	}
	return 0
}

// romanizedKorean scores runs such as "Kim Min-su", "Seo-yeon Lee",
// "Jin Woo Park" and "CHOI YOUNG-HEE".
func romanizedKorean(run []namePart) (float64, bool) {
	sur := func(p namePart) bool { return has(lex().koRomanSet, p.text) }
	giv := func(p namePart) int {
		if has(lex().enStop, p.text) || p.initial {
			return 0
		}
		return koreanGiven(p.text)
	}
	hyph := func(p namePart) bool { return strings.Contains(p.text, "-") }
	switch len(run) {
	case 2:
		for _, o := range [][2]namePart{{run[0], run[1]}, {run[1], run[0]}} {
			s, g := o[0], o[1]
			if !sur(s) || giv(g) == 0 {
				continue
			}
			switch {
			case giv(g) == 2 && hyph(g):
				return 0.85, true
			case giv(g) == 2:
				return 0.5, true
			}
			return 0.35, true
		}
	case 3:
		if sur(run[2]) && giv(run[0]) == 1 && giv(run[1]) == 1 || sur(run[0]) && giv(run[1]) == 1 && giv(run[2]) == 1 {
			return 0.6, true
		}
	}
	return 0, false
}

// propagateNames marks other mentions of a name already found with good
// confidence: "Robert J. Alvarez" makes a later "Alvarez" a name too, and
// "김민수 님" a later bare "김민수가". It reads the note once, looking the
// forms up by their first two letters.
func propagateNames(d *doc, c []Finding) []Finding {
	forms := map[string][]string{}
	seen := map[string]bool{}
	for _, f := range c {
		if f.Kind != Name || f.Confidence < 0.6 {
			continue
		}
		for _, form := range nameForms(d.s[f.Start:f.End]) {
			if key, off, ok := sweepKey(form); ok && off == 0 && !seen[form] {
				seen[form] = true
				forms[key] = append(forms[key], form)
			}
		}
	}
	if len(forms) == 0 {
		return c
	}
	for _, t := range d.toks {
		if t.kind != tWord && t.kind != tHangul {
			continue
		}
		for _, form := range forms[firstRunes(d.s[t.start:], 2)] {
			if mentionAt(d, t.start, form) {
				c = append(c, Finding{Kind: Name, Start: t.start, End: t.start + len(form), Confidence: 0.7})
			}
		}
	}
	return c
}

// nameForms returns the full name and, for Latin names, its longer parts
// that stand for the person on their own.
func nameForms(name string) []string {
	forms := []string{name}
	if r, _ := utf8.DecodeRuneInString(name); isHangulSyllable(r) {
		return forms
	}
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == ' ' || r == ',' })
	if len(parts) < 2 {
		return forms
	}
	for _, p := range parts {
		if len(p) >= 3 && !has(lex().enStop, p) && !has(lex().eponyms, p) && !strings.HasSuffix(p, ".") {
			forms = append(forms, p)
		}
	}
	return forms
}

// mentionAt reports whether form is written at k as a name of its own.
func mentionAt(d *doc, k int, form string) bool {
	e := k + len(form)
	if e > len(d.s) || d.s[k:e] != form || !boundedLeft(d.s, k, "") {
		return false
	}
	if r, _ := utf8.DecodeRuneInString(form); isHangulSyllable(r) {
		return !precededByHangul(d.s, k) && hangulRestOK(d.s, e)
	}
	return boundedRight(d.s, e, "") && !eponymHeadAfter(d, e)
}

func precededByHangul(s string, k int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:k])
	return isHangulSyllable(r)
}

// hangulRestOK accepts the end of a Hangul word or a particle or title
// glued to the name.
func hangulRestOK(s string, e int) bool {
	j := e
	for j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if !isHangulSyllable(r) {
			break
		}
		j += n
	}
	rest := s[e:j]
	return rest == "" || koParticles[rest] || startsWithTitle(rest)
}
