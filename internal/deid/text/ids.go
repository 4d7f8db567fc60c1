package text

import (
	"strings"
	"unicode/utf8"
)

// idLabel is a label, lower case, that names the identifier written after
// it ("MRN: 12345678", "건강보험증번호 5-1234567890").
type idLabel struct {
	label string
	kind  Kind
}

var idLabels = labelList([]idLabel{
	{"mrn", MRN}, {"mr", MRN}, {"medical record", MRN}, {"hosp", MRN}, {"hospital", MRN},
	{"chart", MRN}, {"patient id", MRN}, {"pt id", MRN}, {"unit", MRN}, {"등록번호", MRN},
	{"병록번호", MRN}, {"환자번호", MRN}, {"차트번호", MRN}, {"의무기록번호", MRN}, {"진료번호", MRN},
	{"병원등록번호", MRN}, {"환자 id", MRN},

	{"acct", Account}, {"account", Account}, {"billing account", Account}, {"계좌", Account},
	{"계좌번호", Account}, {"환불계좌", Account}, {"가상계좌", Account}, {"입금계좌", Account},
	{"card", Account}, {"credit card", Account}, {"카드번호", Account}, {"국민은행", Account},
	{"신한은행", Account}, {"우리은행", Account}, {"하나은행", Account}, {"농협", Account},
	{"농협은행", Account}, {"기업은행", Account}, {"카카오뱅크", Account}, {"토스뱅크", Account},
	{"케이뱅크", Account}, {"새마을금고", Account}, {"우체국", Account}, {"수협", Account},
	{"부산은행", Account}, {"대구은행", Account}, {"경남은행", Account}, {"광주은행", Account},
	{"전북은행", Account}, {"제주은행", Account}, {"sc제일은행", Account}, {"씨티은행", Account},

	{"member", HealthPlan}, {"member id", HealthPlan}, {"subscriber", HealthPlan},
	{"subscriber id", HealthPlan}, {"policy", HealthPlan}, {"insurance id", HealthPlan},
	{"group", HealthPlan}, {"mbi", HealthPlan}, {"medicare", HealthPlan}, {"medicare id", HealthPlan},
	{"medicaid", HealthPlan}, {"medicaid id", HealthPlan}, {"hicn", HealthPlan},
	{"health plan", HealthPlan}, {"plan id", HealthPlan}, {"건강보험증", HealthPlan},
	{"건강보험증번호", HealthPlan}, {"보험증번호", HealthPlan}, {"보험증", HealthPlan},
	{"의료급여증", HealthPlan}, {"의료급여증번호", HealthPlan}, {"산정특례", HealthPlan},
	{"산정특례 등록번호", HealthPlan}, {"보험번호", HealthPlan}, {"가입자번호", HealthPlan},
	{"증번호", HealthPlan}, {"증권번호", HealthPlan},

	{"license", License}, {"licence", License}, {"lic", License}, {"dea", License},
	{"npi", License}, {"driver's license", License}, {"면허번호", License}, {"면허", License},
	{"의사면허", License}, {"운전면허", License}, {"운전면허번호", License}, {"자격번호", License},

	{"serial", Device}, {"s/n", Device}, {"sn", Device}, {"udi", Device}, {"device id", Device},
	{"imei", Device}, {"일련번호", Device}, {"기기번호", Device}, {"시리얼", Device},
	{"시리얼번호", Device}, {"제조번호", Device},
})

func labelList(ls []idLabel) *wordList {
	l := &wordList{byLast: map[string][]listWord{}}
	for _, x := range ls {
		l.add(x.label, x.kind)
	}
	return l
}

// labelFillers are words and marks that may stand between a label and its
// value ("Lic. No.", "member no.", "면허번호 제 12345 호").
var labelFillers = []string{"no", "no.", "number", "num", "nr", "번호", "제", "is", "id#"}

// labelBefore returns the kind named by the label that ends right before
// pos, if any.
func labelBefore(d *doc, pos int) (Kind, bool) {
	l, ok := idLabels.endOf(stripFillers(d.before(pos, 48)))
	return l.kind, ok
}

func stripFillers(b string) string {
	for {
		b = trimTail(b, ":#.=(-")
		cut := false
		for _, w := range labelFillers {
			if hasWordSuffix(b, w) {
				b, cut = b[:len(b)-len(w)], true
			}
		}
		if !cut {
			return b
		}
	}
}

// findLabeledIDs finds record, account, health-plan, licence and device
// numbers by the label written before them.
func findLabeledIDs(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i < len(s); {
		lo, hi := nextRun(s, i)
		if lo < 0 {
			break
		}
		i = hi
		if k := strings.LastIndexAny(s[lo:hi], ":#"); k > 0 && k < hi-lo-1 && isLetterByte(s[lo]) {
			lo += k + 1 // "MRN#12345678", "MRN:12345678": the label is glued on
		}
		lo, hi = trimRun(s, lo, hi)
		if !idLike(s[lo:hi]) {
			continue
		}
		if k, ok := labelBefore(d, labelEdge(s, lo)); ok {
			out = append(out, Finding{Kind: k, Start: lo, End: hi, Confidence: 0.9})
		}
	}
	return out
}

// nextRun returns the next run of non-space bytes at or after i.
func nextRun(s string, i int) (int, int) {
	for i < len(s) && isSpaceByte(s[i]) {
		i++
	}
	if i >= len(s) {
		return -1, -1
	}
	j := i
	for j < len(s) && !isSpaceByte(s[j]) {
		j++
	}
	return i, j
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// trimRun narrows a run to the identifier inside it: it drops sentence
// punctuation and Hangul around the digits ("제58213호", "(06236)") but
// keeps GS1 application identifiers such as "(01)0088…".
func trimRun(s string, lo, hi int) (int, int) {
	for lo < hi {
		r, n := utf8.DecodeRuneInString(s[lo:hi])
		switch {
		case r == '(' && !gs1Start(s[lo:hi]), r == '#', r == '[', r == '"', isHangulSyllable(r), r == ':':
			lo += n
			continue
		}
		break
	}
	for lo < hi {
		r, n := utf8.DecodeLastRuneInString(s[lo:hi])
		switch {
		case r == ')' && strings.Count(s[lo:hi], "(") < strings.Count(s[lo:hi], ")"),
			strings.ContainsRune(".,;:]\"'", r), isHangulSyllable(r):
			hi -= n
			continue
		}
		break
	}
	return lo, hi
}

func gs1Start(s string) bool {
	return len(s) > 4 && s[0] == '(' && isDigit(s[1]) && isDigit(s[2]) && s[3] == ')' && isDigit(s[4])
}

// labelEdge moves back over Hangul, '#', ':' and '(' glued to the front
// of an identifier, so that "제" in "면허번호 제58213호" is read as a filler
// and "MRN#" as the label.
func labelEdge(s string, lo int) int {
	for lo > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:lo])
		if !isHangulSyllable(r) && r != '#' && r != '(' && r != ':' {
			return lo
		}
		lo -= n
	}
	return lo
}

// idLike wants at least three digits, or two in a mixed code of five or
// more characters, and nothing but letters, digits and joiners.
func idLike(t string) bool {
	if t == "" {
		return false
	}
	digits := countDigits(t)
	for _, c := range []byte(t) {
		if c >= 0x80 || c != '-' && c != '/' && c != '.' && c != '(' && c != ')' && c != '_' && !isWordByte(c) {
			return false
		}
	}
	return digits >= 3 || digits >= 2 && len(t) >= 5
}
