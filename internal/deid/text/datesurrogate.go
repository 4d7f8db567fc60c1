package text

import (
	"fmt"
	"strings"
	"time"
)

// A dateField is one part of a written date: where it is and what it is.
type dateField struct {
	start, end int
	role       byte // 'Y', 'M', 'D' or 'W' (weekday)
}

// date moves a written date by the shift and writes it back in the same
// notation. Dates it cannot read become "[DATE]".
func (s *surrogates) date(v string) string {
	fields := dateFields(v)
	y, m, d, hasY, ok := fieldValues(v, fields)
	if !ok {
		return "[DATE]"
	}
	ny, nm, nd := shiftDate(y, m, d, s.shift)
	var b strings.Builder
	last := 0
	for _, f := range fields {
		b.WriteString(v[last:f.start])
		b.WriteString(rewriteField(v[f.start:f.end], f.role, ny, nm, nd, hasY))
		last = f.end
		if suf := ordinalSuffix(v[f.end:]); f.role == 'D' && suf != "" {
			b.WriteString(styleLike(suf, ordinal(nd)))
			last += len(suf)
		}
	}
	b.WriteString(v[last:])
	return b.String()
}

// dateFields finds the year, month, day and weekday parts of v.
func dateFields(v string) []dateField {
	var fs []dateField
	var nums []dateField
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case isDigit(c):
			e := digitRunEnd(v, i)
			nums = append(nums, dateField{start: i, end: e})
			if role := koreanUnit(v[e:]); role != 0 {
				fs = append(fs, dateField{start: i, end: e, role: role})
			}
			i = e
		case isLetterByte(c):
			e := i
			for e < len(v) && isLetterByte(v[e]) {
				e++
			}
			w := strings.ToLower(v[i:e])
			if _, ok := months[w]; ok {
				fs = append(fs, dateField{start: i, end: e, role: 'M'})
			} else if weekdays[w] {
				fs = append(fs, dateField{start: i, end: e, role: 'W'})
			}
			i = e
		default:
			i++
		}
	}
	if len(fs) > 0 && hasRole(fs, 'M') && !strings.ContainsAny(v, "년월일") {
		return mergeFields(fs, wordDateNumbers(v, nums))
	}
	if strings.ContainsAny(v, "년월일") {
		return fs
	}
	return mergeFields(fs, numericRoles(v, nums))
}

func koreanUnit(rest string) byte {
	switch {
	case strings.HasPrefix(rest, "년"):
		return 'Y'
	case strings.HasPrefix(rest, "월"):
		return 'M'
	case strings.HasPrefix(rest, "일"):
		return 'D'
	}
	return 0
}

func hasRole(fs []dateField, r byte) bool {
	for _, f := range fs {
		if f.role == r {
			return true
		}
	}
	return false
}

// wordDateNumbers: with a month name, four digits are the year and one or
// two the day.
func wordDateNumbers(v string, nums []dateField) []dateField {
	for i := range nums {
		if nums[i].end-nums[i].start == 4 {
			nums[i].role = 'Y'
		} else {
			nums[i].role = 'D'
		}
	}
	return nums
}

// numericRoles assigns Y/M/D to 2024-03-11, 03/11/2024, 11/03/2024 (when
// the first number cannot be a month), 24.03.11, 2021.04, 03/2015, 7/22,
// 20240311 and 910228.
func numericRoles(v string, nums []dateField) []dateField {
	l := make([]int, len(nums))
	n := make([]int, len(nums))
	for i, f := range nums {
		l[i], n[i] = f.end-f.start, atoi(v[f.start:f.end])
	}
	set := func(roles string) []dateField {
		for i := range nums {
			nums[i].role = roles[i]
		}
		return nums
	}
	dot := strings.Contains(v, ".")
	switch {
	case len(nums) == 1 && l[0] == 8:
		return splitCompact(nums[0], 4)
	case len(nums) == 1 && l[0] == 6:
		return splitCompact(nums[0], 2)
	case len(nums) == 3 && l[0] == 4:
		return set("YMD")
	case len(nums) == 3 && dot && l[0] == 2 && l[2] == 2:
		return set("YMD")
	case len(nums) == 3 && n[0] > 12:
		return set("DMY")
	case len(nums) == 3:
		return set("MDY")
	case len(nums) == 2 && l[0] == 4:
		return set("YM")
	case len(nums) == 2 && l[1] == 4:
		return set("MY")
	case len(nums) == 2 && n[0] > 12:
		return set("DM")
	case len(nums) == 2:
		return set("MD")
	}
	return nil
}

// splitCompact cuts YYYYMMDD (yl 4) or YYMMDD (yl 2) into fields.
func splitCompact(f dateField, yl int) []dateField {
	return []dateField{
		{start: f.start, end: f.start + yl, role: 'Y'},
		{start: f.start + yl, end: f.start + yl + 2, role: 'M'},
		{start: f.start + yl + 2, end: f.start + yl + 4, role: 'D'},
	}
}

// mergeFields joins word fields and number fields in position order.
func mergeFields(a, b []dateField) []dateField {
	out := append(append([]dateField(nil), a...), b...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].start < out[j-1].start; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// fieldValues reads the date; a missing year is taken as 2000 (a leap
// year, so 29 February survives) and a missing day as the 15th.
func fieldValues(v string, fs []dateField) (y, m, d int, hasY, ok bool) {
	y, d = 2000, 15
	for _, f := range fs {
		t := v[f.start:f.end]
		switch f.role {
		case 'Y':
			y, hasY = atoi(t), true
			if f.end-f.start == 2 {
				y = twoDigitYear(y)
			}
		case 'M':
			m = atoi(t)
			if mm, isWord := months[strings.ToLower(t)]; isWord {
				m = mm
			}
		case 'D':
			d = atoi(t)
		}
	}
	return y, m, d, hasY, m >= 1 && m <= 12 && validDate(y, m, d)
}

// twoDigitYear reads 24 as 2024 and 52 as 1952.
func twoDigitYear(y int) int {
	if y <= time.Now().Year()%100 {
		return 2000 + y
	}
	return 1900 + y
}

func shiftDate(y, m, d, days int) (int, int, int) {
	t := time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC).AddDate(0, 0, days)
	return t.Year(), int(t.Month()), t.Day()
}

// rewriteField writes the new value in the width and style of the old.
func rewriteField(old string, role byte, y, m, d int, hasY bool) string {
	switch role {
	case 'Y':
		if len(old) == 2 {
			return fmt.Sprintf("%02d", y%100)
		}
		return fmt.Sprintf("%04d", y)
	case 'M':
		if isLetterByte(old[0]) {
			return styleLike(old, monthName(m, len(old)))
		}
		return number(m, old)
	case 'D':
		return number(d, old)
	case 'W':
		wd := time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC).Weekday().String()
		if !hasY {
			return old // the weekday of a date without a year says nothing
		}
		if len(old) <= 4 {
			wd = wd[:3]
		}
		return styleLike(old, wd)
	}
	return old
}

func number(n int, old string) string {
	if len(old) == 2 {
		return fmt.Sprintf("%02d", n)
	}
	return fmt.Sprint(n)
}

var monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July",
	"August", "September", "October", "November", "December"}

// monthName writes month m in full or abbreviated to three letters (four
// for "Sept").
func monthName(m, oldLen int) string {
	full := monthNames[m-1]
	if oldLen <= 4 && oldLen < len(full) {
		return full[:3]
	}
	return full
}

// styleLike copies upper/lower/title case from old onto w.
func styleLike(old, w string) string {
	switch {
	case allUpper(old):
		return strings.ToUpper(w)
	case old == strings.ToLower(old):
		return strings.ToLower(w)
	}
	return w
}

// ordinalSuffix returns "st", "nd", "rd" or "th" at the start of rest.
func ordinalSuffix(rest string) string {
	if len(rest) < 2 || len(rest) > 2 && isLetterByte(rest[2]) {
		return ""
	}
	switch strings.ToLower(rest[:2]) {
	case "st", "nd", "rd", "th":
		return rest[:2]
	}
	return ""
}

// ordinal returns the English ordinal suffix of day n.
func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return "th"
	case n%10 == 1:
		return "st"
	case n%10 == 2:
		return "nd"
	case n%10 == 3:
		return "rd"
	}
	return "th"
}
