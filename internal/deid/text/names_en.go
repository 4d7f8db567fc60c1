package text

import (
	"strings"
)

// Context words, lower case, written right before a name.
var (
	titleWords = newWordList("dr.", "dr", "mr.", "mr", "mrs.", "mrs", "ms.", "ms", "miss", "prof.", "prof",
		"professor", "doctor", "mx.", "sr.", "fr.")
	// strong labels and relations: "Patient:", "wife", "Signed by"
	nameLabelWords = []string{"patient", "pt", "pt.", "name", "patient name", "caller", "attending", "surgeon",
		"assistant", "signed", "signed by", "provider", "physician", "read by", "reported by",
		"interpreted by", "presented by", "resulted by", "sent by", "guarantor", "participant", "subject",
		"proband", "employee", "coordinator", "counselor", "intensivist", "endoscopist", "anesthesiologist",
		"pharmacist", "representative", "investigator", "signature", "dear", "re", "crc", "contact",
		"referring", "fellow", "prescriber", "cc", "interpreter", "wife", "husband", "spouse", "partner",
		"son", "daughter", "mother", "mom", "father", "dad", "brother", "sister", "niece", "nephew",
		"grandson", "granddaughter", "grandchild", "daughter-in-law", "son-in-law", "aunt", "uncle",
		"cousin", "friend", "neighbor", "neighbour", "caregiver", "roommate", "boss", "girlfriend",
		"boyfriend", "fiance", "fiancee", "proxy", "guardian", "ex-wife", "ex-husband", "rn", "np",
		"nurse", "officer", "attorney", "on call", "ciso", "trainer", "worker", "therapist", "technician",
		"mt", "resident", "intern", "student", "chaplain", "social worker", "translator", "donor",
		"recipient", "source patient", "patient:", "pt:", "legal representative", "mother-in-law",
		"father-in-law", "stepson", "stepdaughter", "landlord", "employer", "colleague", "witness",
		"electronically signed by", "dictated by", "transcribed by", "verified by", "approved by",
		"seen by", "examined by", "placed by", "performed by", "requested by", "referred by", "called",
		"paged", "notified", "informed", "cosigned by", "attending physician", "primary care",
		"pcp", "r1", "r2", "r3", "r4", "pa-c", "cnm", "crna", "lpn", "cna"}
	nameLabels     = newWordList(nameLabelWords...)
	weakNameLabels = newWordList("with", "and", "to", "from", "by", "for", "regarding", "re:", "of")
	// written right after a name: ", MD", "(wife)"
	credentials = []string{"md", "m.d.", "do", "rn", "np", "pa", "pa-c", "cnm", "crna", "phd", "ms", "mt",
		"cgc", "dds", "dmd", "pharmd", "lpn", "msw", "lcsw", "pt", "ot", "mph", "facs", "facp", "frcp",
		"mbbs", "od"}
	relationAfter = []string{"(wife)", "(husband)", "(son)", "(daughter)", "(mother)", "(father)",
		"(spouse)", "(partner)", "(sister)", "(brother)", "(son-in-law)", "(daughter-in-law)",
		"(guardian)", "(caregiver)", "(friend)", "(neighbor)"}
	// a capitalized word followed by one of these is an eponym, not a person
	eponymHeads = toSet([]string{"disease", "syndrome", "sign", "signs", "palsy", "catheter", "test", "tests",
		"fracture", "cyst", "score", "scale", "maneuver", "manoeuvre", "reflex", "lymphoma", "sarcoma",
		"tumor", "tumour", "procedure", "operation", "classification", "criteria", "law", "triad",
		"phenomenon", "ulcer", "esophagus", "node", "nodes", "lesion", "lesions", "murmur", "point",
		"chart", "protocol", "level", "stage", "staging", "type", "dementia", "thyroiditis", "cells",
		"cell", "bypass", "repair", "fundoplication", "position", "tube", "block", "nerve", "body",
		"bodies", "respiration", "breathing", "pattern", "wave", "index", "formula", "equation",
		"pouch", "diverticulum", "contracture", "deformity", "shunt", "hernia", "disorder", "anomaly",
		"virus", "encephalopathy", "aneurysm", "forceps", "retractor", "incision", "approach", "space",
		"canal", "grade", "gradeing", "system", "curve", "line", "method", "stain", "staining", "ratio",
		"effect", "phenomenon", "rule", "rules", "sprain", "arthritis", "spots", "nodule", "nodules",
		"dressing", "features", "hunt"})
)

// A namePart is one word of a written name: "Margaret", "O'Brien",
// "Tate-Morgan", "Min-su" or an initial "J.".
type namePart struct {
	start, end int
	text       string
	initial    bool
}

// findNames finds person names in Latin script and in Hangul.
func findNames(d *doc, out []Finding) []Finding {
	out = latinNames(d, out)
	return hangulNames(d, out)
}

// latinNames groups capitalized words into runs and scores each run from
// the word lists and the context around it.
func latinNames(d *doc, out []Finding) []Finding {
	for i := 0; i < len(d.toks); i++ {
		run, next := nameRun(d, i)
		if len(run) == 0 {
			continue
		}
		i = next - 1
		if f, ok := scoreLatinRun(d, run); ok {
			out = append(out, f)
		}
	}
	return out
}

// nameRun reads up to four name parts separated by single spaces (or
// "Last, First") starting at token i. It returns the parts and the token
// index after them.
func nameRun(d *doc, i int) ([]namePart, int) {
	var run []namePart
	k := i
	for len(run) < 4 && k < len(d.toks) {
		p, next, ok := readPart(d, k)
		if !ok || !p.initial && stopPart(p.text) {
			break
		}
		run = append(run, p)
		k = next
		if k+1 < len(d.toks) && d.toks[k].kind == tSpace && !d.toks[k].newline && d.toks[k].end-d.toks[k].start == 1 {
			k++
			continue
		}
		if comma := lastFirstComma(d, k, run); comma > 0 {
			k = comma
			continue
		}
		break
	}
	if len(run) == 0 {
		return nil, i + 1
	}
	return run, k
}

// lastFirstComma allows "Kowalczyk, Anna" and "Lee, Dong-hyun": one part,
// a comma, and a given name from the list or a hyphenated Korean given
// name.
func lastFirstComma(d *doc, k int, run []namePart) int {
	if len(run) != 1 || k+2 >= len(d.toks) || d.text(k) != "," || d.toks[k+1].kind != tSpace {
		return 0
	}
	p, _, ok := readPart(d, k+2)
	if !ok || !(has(lex().firstNames, p.text) || koreanGiven(p.text) == 2 && strings.Contains(p.text, "-")) {
		return 0
	}
	return k + 2
}

// readPart reads one name part at token i.
func readPart(d *doc, i int) (namePart, int, bool) {
	t := d.toks[i]
	if t.kind != tWord || t.digits > 0 || !isUpperByte(d.s[t.start]) {
		return namePart{}, i, false
	}
	w := d.text(i)
	if len(w) == 1 { // an initial needs its period: "J. Smith"
		if i+1 < len(d.toks) && d.text(i+1) == "." && (i == 0 || d.toks[i-1].kind == tSpace || d.text(i-1) == "(") {
			return namePart{start: t.start, end: t.start + 2, text: w, initial: true}, i + 2, true
		}
		if i+2 < len(d.toks) && d.text(i+1) == "'" && d.toks[i+2].kind == tWord { // O'Brien
			e := d.toks[i+2].end
			return namePart{start: t.start, end: e, text: d.s[t.start:e]}, i + 3, true
		}
		return namePart{}, i, false
	}
	if allUpper(w) && !koreanOrListed(w) {
		return namePart{}, i, false // CT, MRI, HPI: abbreviations
	}
	end, k := t.end, i+1
	for k+1 < len(d.toks) && d.text(k) == "-" && d.toks[k+1].kind == tWord && d.toks[k+1].digits == 0 {
		end, k = d.toks[k+1].end, k+2
	}
	return namePart{start: t.start, end: end, text: d.s[t.start:end]}, k, true
}

func allUpper(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] >= 'a' && w[i] <= 'z' {
			return false
		}
	}
	return true
}

// koreanOrListed lets all-capital words through when they are names from
// the lists, as in passports: "CHOI YOUNG-HEE", "MARGARET SULLIVAN".
func koreanOrListed(w string) bool {
	ko := has(lex().koRomanSet, w)
	hyphenated := strings.Contains(w, "-") && koreanGiven(w) == 2
	return len(w) > 2 && (ko || has(lex().firstNames, w) || has(lex().surnames, w)) || hyphenated
}

// stopPart is true for words that never start or continue a name here.
func stopPart(w string) bool {
	if has(lex().enStop, w) {
		return true
	}
	lw := strings.ToLower(w)
	if m, ok := months[lw]; ok && len(w) > 3 && len(w) == len(monthNames[m-1]) && !has(lex().firstNames, w) {
		return true
	}
	for _, suf := range []string{"ology", "ologist", "iatry", "iatrics", "pedics", "ectomy", "itis", "osis", "emia"} {
		if strings.HasSuffix(lw, suf) {
			return true
		}
	}
	return weekdays[lw] || containsExact(nameLabelWords, lw) && !has(lex().firstNames, w) && !has(lex().surnames, w)
}

func containsExact(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

// scoreLatinRun decides whether a run of capitalized words is a person.
func scoreLatinRun(d *doc, run []namePart) (Finding, bool) {
	run = trimEponymTail(d, run)
	if len(run) == 0 || eponymUse(d, run) {
		return Finding{}, false
	}
	start, end := run[0].start, run[len(run)-1].end
	lastWord := run[len(run)-1].text
	if organizationAfter(d, end) || has(orgWords, lastWord) || lookup(streetSuffixes, lastWord) && len(run) > 1 {
		return Finding{}, false
	}
	if strings.HasPrefix(d.s[end:], ":") && !titleBefore(d, start) && len(run) == 1 && !has(lex().firstNames, lastWord) {
		return Finding{}, false // a heading: "Patient Education:"
	}
	conf := clamp(latinBase(d, run) + latinContext(d, start, end))
	if len(run) == 1 && has(lex().eponyms, run[0].text) && !titleBefore(d, start) {
		conf -= 0.5
	}
	if allUpper(run[0].text) && conf >= DefaultMinConfidence {
		start, end = capitalsAround(d, start, end)
	}
	return Finding{Kind: Name, Start: start, End: end, Confidence: conf}, conf > floor
}

// capitalsAround widens a name written in capitals over the capitalized
// words beside it that the lists do not know: "JOHN KOWALCZYK",
// "KOWALCZYK, JOHN". Abbreviations of two letters and credentials stay out.
func capitalsAround(d *doc, start, end int) (int, int) {
	if w := wordAt(d.s[min(len(d.s), end+1):]); end < len(d.s) && d.s[end] == ' ' && capitalWord(w) {
		end += 1 + len(w)
	}
	b := strings.TrimSuffix(strings.TrimRight(d.s[max(0, start-40):start], " "), ",")
	k := len(b)
	for k > 0 && isUpperByte(b[k-1]) {
		k--
	}
	if w := b[k:]; capitalWord(w) && (k == 0 || !isWordByte(b[k-1])) {
		start -= start - max(0, start-40) - k
	}
	return start, end
}

func capitalWord(w string) bool {
	return len(w) >= 3 && allUpper(w) && countDigits(w) == 0 && !strings.Contains(w, ".") &&
		!has(lex().enStop, w) && !containsExact(credentials, strings.ToLower(w)) && !titleWords.ends(strings.ToLower(w))
}

// trimEponymTail drops trailing parts that are eponyms used as such
// ("Marcus Bell" stays, "Hodgkin" in "Hodgkin lymphoma" goes).
func trimEponymTail(d *doc, run []namePart) []namePart {
	for len(run) > 1 && has(lex().eponyms, run[len(run)-1].text) && eponymHeadAfter(d, run[len(run)-1].end) {
		run = run[:len(run)-1]
	}
	return run
}

// orgWords end the names of organizations: "Patient Financial Services",
// "Mercy General Hospital".
var orgWords = lowerSet(strings.Fields(`Services Service Department Dept Center Centre Clinic Hospital
	Living Care Residence Manor Village Lodge Gardens Estates Pavilion Hall Rounds
	Medical University College Health Healthcare Group Associates Foundation Institute Program Team
	Office Pharmacy Insurance Bank Company Inc LLC Corp Corporation Society Association Laboratory
	Labs Hospice Home Church School Academy Agency Ministry Council Committee Board Network System
	Systems Partners Practice Surgery Imaging Radiology Rehabilitation Nursing`))

// organizationAfter is true when the capitalized run goes on with an
// organization word.
func organizationAfter(d *doc, end int) bool {
	a := d.s[end:min(len(d.s), end+24)]
	if !strings.HasPrefix(a, " ") {
		return false
	}
	return has(orgWords, wordAt(strings.TrimLeft(a, " ")))
}

// eponymUse is true when the run is followed by a possessive or a disease
// word: "Parkinson's disease", "Foley catheter", "Down syndrome".
func eponymUse(d *doc, run []namePart) bool {
	last := run[len(run)-1]
	if titleBefore(d, run[0].start) {
		return false
	}
	if eponymHeadAfter(d, last.end) {
		return true
	}
	a := d.after(last.end, 3)
	if strings.HasPrefix(a, "'s") || strings.HasPrefix(a, "’s") {
		return has(lex().eponyms, last.text)
	}
	return false
}

func eponymHeadAfter(d *doc, end int) bool {
	a := d.after(end, 24)
	a = strings.TrimPrefix(strings.TrimPrefix(a, "'s"), "’s")
	a = strings.TrimLeft(a, " -")
	e := 0
	for e < len(a) && isLetterByte(a[e]) {
		e++
	}
	return eponymHeads[a[:e]]
}

// latinBase scores the words themselves.
func latinBase(d *doc, run []namePart) float64 {
	l := lex()
	if c, ok := romanizedKorean(run); ok {
		return c
	}
	first, last := run[0], run[len(run)-1]
	firstGiven, firstSur := has(l.firstNames, first.text), has(l.surnames, first.text)
	lastSur := has(l.surnames, last.text)
	switch n := len(run); {
	case n == 1 && firstGiven && !has(ambiguousGiven, first.text) && !sentenceStart(d, first.start):
		return 0.55 - commonWordPenalty(d, first) // "Called Jennifer about the results"
	case n == 1 && firstGiven:
		return 0.4 - commonWordPenalty(d, first)
	case n == 1 && firstSur:
		return 0.3 - commonWordPenalty(d, first)
	case n == 1:
		return 0.15 - commonWordPenalty(d, first)
	case firstGiven && !first.initial:
		if lastSur || isLastNameShape(last.text) {
			return 0.85
		}
		return 0.6
	case first.initial && (lastSur || isLastNameShape(last.text)):
		return 0.5
	case lastSur || firstSur || has(l.firstNames, last.text):
		return 0.45
	}
	return 0.3
}

// ambiguousGiven are given names that are also ordinary English words.
var ambiguousGiven = toSet(strings.Fields(`will hope grace joy faith mark bill rose jack pat guy art sue june
	april may dawn summer bob ray max frank lee gene iris ivy holly angel crystal ruby pearl`))

// sentenceStart is true when pos begins a sentence, a line or a list item,
// where any word is capitalized.
func sentenceStart(d *doc, pos int) bool {
	b := strings.TrimRight(d.s[max(0, pos-8):pos], " \t")
	if b == "" || pos <= 8 && strings.TrimSpace(d.s[:pos]) == "" {
		return true
	}
	switch b[len(b)-1] {
	case '.', '!', '?', ':', '\n', '\r', '-', '*', '#', ')', '>', '"', ';':
		return true
	}
	return false
}

// isLastNameShape: a capitalized word with lower-case letters that is not
// an ordinary word of the notes.
func isLastNameShape(w string) bool {
	return len(w) >= 2 && !allUpper(w) && !has(lex().enStop, w)
}

// commonWordPenalty lowers single words that also appear in lower case in
// the same note: they are ordinary words at a sentence start.
func commonWordPenalty(d *doc, p namePart) float64 {
	lw := strings.ToLower(p.text)
	switch {
	case len(lw) < 3:
		return 0.1
	case d.hasLowerWord(lw):
		return 0.3
	}
	return 0
}

// latinContext adds what the words around the run say.
func latinContext(d *doc, start, end int) float64 {
	ctx := 0.0
	switch {
	case titleBefore(d, start):
		ctx = 0.6
	case labelBeforeName(d, start, nameLabels), koLabels.ends(trimTail(d.before(start, 40), ":,()/-")):
		ctx = 0.45
	case labelBeforeName(d, start, weakNameLabels):
		ctx = 0.2
	}
	if signature(d, start, end) {
		ctx += 0.2
	}
	return ctx + nameAfterContext(d, end)
}

// signature is true for a name alone at the end of a line after a dash:
// "... thanks - Tina".
func signature(d *doc, start, end int) bool {
	b := strings.TrimRight(d.before(start, 4), " ")
	a := strings.TrimSpace(d.after(end, 8))
	return (strings.HasSuffix(b, "-") || strings.HasSuffix(b, "—")) && (a == "" || a == "\"" || a == "”")
}

func titleBefore(d *doc, start int) bool {
	return titleWords.ends(strings.TrimRight(d.before(start, 16), " "))
}

// labelBeforeName checks the words right before a name, past ':' ',' '('.
func labelBeforeName(d *doc, start int, labels *wordList) bool {
	return labels.ends(trimTail(d.before(start, 40), ":,("))
}

// nameAfterContext looks right of a name for credentials, relations and
// the age/sex shorthand of clinical notes ("Frank Russo, 58M").
func nameAfterContext(d *doc, end int) float64 {
	a := d.after(end, 32)
	t := strings.TrimLeft(a, " ,")
	for _, c := range credentials {
		if hasWordPrefix(t, c) && (strings.HasPrefix(a, ",") || strings.HasPrefix(a, " ")) {
			return 0.5
		}
	}
	for _, r := range relationAfter {
		if strings.HasPrefix(t, r) {
			return 0.45
		}
	}
	if ageSexShorthand(a) || recordAfter(a) || strings.HasPrefix(t, "is a ") && len(t) > 5 && isDigit(t[5]) {
		return 0.4
	}
	return 0
}

// ageSexShorthand matches what clinical notes write after a name: "58M",
// ", 34 F", "(M/67)", "(F/29)", "65/M", "(남/67세)", ", 95,".
func ageSexShorthand(a string) bool {
	comma := strings.HasPrefix(a, ",")
	t := strings.TrimLeft(a, " ,(/")
	for _, p := range []string{"m/", "f/", "남/", "여/", "남,", "여,", "male", "female", "남자", "여자", "남성", "여성"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	e := digitRunEnd(t, 0)
	if e == 0 || e > 3 {
		return false
	}
	r := strings.TrimLeft(t[e:], " /")
	sex := hasWordPrefix(r, "m") || hasWordPrefix(r, "f") || strings.HasPrefix(r, "세") || strings.HasPrefix(r, "y")
	return sex || comma && strings.HasPrefix(t[e:], ",")
}
