package tabular

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ageChain bands ages in 5, 10 and 20 years. Ages over 89 are top-coded
// "90+" from the first band on (HIPAA Safe Harbor), and the 20-year level
// merges them into "80+" so every level stays a function of the one below.
func ageChain(v string) ([]string, bool) {
	s := strings.TrimSpace(v)
	if s == "90+" {
		return []string{v, "90+", "90+", "80+"}, true
	}
	a, err := strconv.Atoi(s)
	if err != nil || a < 0 || a > 150 {
		return nil, false
	}
	return []string{v, ageBand(a, 5), ageBand(a, 10), ageBand20(a)}, true
}

func ageBand(a, width int) string {
	if a >= 90 {
		return "90+"
	}
	lo := a / width * width
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+width-1)
}

func ageBand20(a int) string {
	if a >= 80 {
		return "80+"
	}
	lo := a / 20 * 20
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+19)
}

// dateLayouts are the date forms hospital exports use; the first that parses
// wins.
var dateLayouts = []string{
	"2006-01-02", "2006-01-02 15:04:05", "2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05", "2006-01-02 15:04", "2006/01/02", "2006.01.02", "20060102",
}

func parseDate(v string) (time.Time, string, bool) {
	s := strings.TrimSpace(v)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, l, true
		}
	}
	return time.Time{}, "", false
}

// dateChain generalizes a date to its month, then its year.
func dateChain(v string) ([]string, bool) {
	t, _, ok := parseDate(v)
	if !ok {
		return nil, false
	}
	return []string{v, t.Format("2006-01"), t.Format("2006")}, true
}

// zipChain masks postal code digits from the right: Korean 5-digit codes,
// US ZIP and ZIP+4 (whose +4 goes at the first step).
func zipChain(v string) ([]string, bool) {
	s := strings.TrimSpace(v)
	if len(s) == 10 && s[5] == '-' && allDigits(s[6:]) {
		s = s[:5]
	}
	if len(s) != 5 || !allDigits(s) {
		return nil, false
	}
	return []string{v, s[:4] + "*", s[:3] + "**", s[:2] + "***", s[:1] + "****"}, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// districtChain truncates a Korean address to its city/county/district
// (시·군·구, possibly two of them as in "경기도 성남시 분당구"), then to its
// province or metropolitan city (시·도).
func districtChain(v string) ([]string, bool) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil, false
	}
	n := 1
	for n < len(f) && n < 3 && isSigungu(f[n]) {
		n++
	}
	return []string{v, strings.Join(f[:n], " "), f[0]}, true
}

func isSigungu(tok string) bool {
	return strings.HasSuffix(tok, "시") || strings.HasSuffix(tok, "군") || strings.HasSuffix(tok, "구")
}

// icd10Chapters are the first categories of the ICD-10 (WHO 2019, which the
// Korean KCD follows) chapters. A category in a gap between ranges (such as
// ICD-10-CM's D49) belongs to the chapter before it.
var icd10Chapters = []struct{ start, label string }{
	{"A00", "A00-B99"}, {"C00", "C00-D48"}, {"D50", "D50-D89"}, {"E00", "E00-E90"},
	{"F00", "F00-F99"}, {"G00", "G00-G99"}, {"H00", "H00-H59"}, {"H60", "H60-H95"},
	{"I00", "I00-I99"}, {"J00", "J00-J99"}, {"K00", "K00-K93"}, {"L00", "L00-L99"},
	{"M00", "M00-M99"}, {"N00", "N00-N99"}, {"O00", "O00-O99"}, {"P00", "P00-P96"},
	{"Q00", "Q00-Q99"}, {"R00", "R00-R99"}, {"S00", "S00-T98"}, {"U00", "U00-U99"},
	{"V00", "V01-Y98"}, {"Z00", "Z00-Z99"},
}

// icd10Chain generalizes a diagnosis code to its 3-character category, then
// to its chapter.
func icd10Chain(v string) ([]string, bool) {
	s := strings.ToUpper(strings.TrimSpace(v))
	if !validICD10(s) {
		return nil, false
	}
	cat := s[:3]
	i := sort.Search(len(icd10Chapters), func(i int) bool { return icd10Chapters[i].start > cat })
	if i == 0 {
		return nil, false
	}
	return []string{v, cat, icd10Chapters[i-1].label}, true
}

func validICD10(s string) bool {
	if len(s) < 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < '0' || s[1] > '9' || !isAlnum(s[2]) {
		return false
	}
	rest := strings.TrimPrefix(s[3:], ".")
	if len(rest) > 4 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !isAlnum(rest[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
}

// intervalHierarchy bands numbers in intervals of width, 2·width, 4·width …
// anchored at 0. Its height depends on the data: the first level at which one
// band would hold every value becomes the top "*".
func intervalHierarchy(name string, width float64) *Hierarchy {
	h := &Hierarchy{Name: name}
	h.build = func(values []string) ([][]string, error) {
		nums, err := parseNumbers(values)
		if err != nil {
			return nil, err
		}
		return intervalChains(values, nums, width, intervalHeight(nums, width)), nil
	}
	h.fixed = func(values []string, height int) ([][]string, error) {
		nums, err := parseNumbers(values)
		if err != nil {
			return nil, err
		}
		return intervalChains(values, nums, width, height), nil
	}
	return h
}

// parseNumbers parses the non-empty values; empty cells become NaN.
func parseNumbers(values []string) ([]float64, error) {
	nums := make([]float64, len(values))
	for i, v := range values {
		s := strings.TrimSpace(v)
		if s == "" {
			nums[i] = math.NaN()
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e15 {
			return nil, &ValueError{Index: i, Reason: "not a number"}
		}
		nums[i] = f
	}
	return nums, nil
}

func intervalHeight(nums []float64, width float64) int {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range nums {
		if !math.IsNaN(f) {
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
	}
	if math.IsInf(lo, 1) {
		return 1
	}
	w := width
	for h := 1; h < 64; h++ {
		if math.Floor(lo/w) == math.Floor(hi/w) {
			return h
		}
		w *= 2
	}
	return 64
}

func intervalChains(values []string, nums []float64, width float64, height int) [][]string {
	out := make([][]string, len(values))
	for i, v := range values {
		c := make([]string, height+1)
		c[0], c[height] = v, Top
		w := width
		for l := 1; l < height; l++ {
			if !math.IsNaN(nums[i]) {
				c[l] = band(nums[i], w)
			}
			w *= 2
		}
		out[i] = c
	}
	return out
}

func band(f, w float64) string {
	lo := math.Floor(f/w) * w
	return "[" + strconv.FormatFloat(lo, 'f', -1, 64) + "," + strconv.FormatFloat(lo+w, 'f', -1, 64) + ")"
}
