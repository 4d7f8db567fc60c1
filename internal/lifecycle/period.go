package lifecycle

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a retention period in calendar units ("10y", "6mo", "30d",
// "2y6mo", "12h"). Years and months are calendar years and months, as
// retention law counts them, not multiples of 24 hours.
type Period struct {
	Years, Months, Days, Hours int
}

// ParsePeriod reads a period such as "10y", "2y6mo", "30d" or "36h".
func ParsePeriod(s string) (Period, error) {
	var p Period
	rest := strings.TrimSpace(s)
	if rest == "" {
		return p, fmt.Errorf("empty period: write e.g. 10y, 6mo, 30d or 12h")
	}
	seen := map[string]bool{}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		unit, n, next, err := periodUnit(rest, i)
		if err != nil {
			return Period{}, fmt.Errorf("period %q: %w", s, err)
		}
		if seen[unit] {
			return Period{}, fmt.Errorf("period %q: unit %s given twice", s, unit)
		}
		seen[unit] = true
		p.set(unit, n)
		rest = next
	}
	if p.IsZero() {
		return Period{}, fmt.Errorf("period %q is zero: a retention period must be positive", s)
	}
	if p.Days > 99999 { // weeks are kept as days; String must write a period that reads back
		return Period{}, fmt.Errorf("period %q is %d days, over 99999: write it in years or months", s, p.Days)
	}
	return p, nil
}

func periodUnit(s string, digits int) (unit string, n int, rest string, err error) {
	if digits == 0 || digits > 5 {
		return "", 0, "", fmt.Errorf("expected a number of at most 5 digits before a unit (y, mo, w, d, h)")
	}
	n, _ = strconv.Atoi(s[:digits])
	for _, u := range []string{"mo", "y", "w", "d", "h"} {
		if strings.HasPrefix(s[digits:], u) {
			return u, n, s[digits+len(u):], nil
		}
	}
	return "", 0, "", fmt.Errorf("unknown unit after %s: use y, mo, w, d or h", s[:digits])
}

func (p *Period) set(unit string, n int) {
	switch unit {
	case "y":
		p.Years = n
	case "mo":
		p.Months = n
	case "w":
		p.Days += 7 * n
	case "d":
		p.Days += n
	case "h":
		p.Hours = n
	}
}

// IsZero reports whether the period is empty.
func (p Period) IsZero() bool { return p == Period{} }

// Before returns t minus the period: data effective before it has expired at t.
func (p Period) Before(t time.Time) time.Time {
	return t.AddDate(-p.Years, -p.Months, -p.Days).Add(-time.Duration(p.Hours) * time.Hour)
}

// After returns t plus the period: the end of retention of data effective at t.
func (p Period) After(t time.Time) time.Time {
	return t.AddDate(p.Years, p.Months, p.Days).Add(time.Duration(p.Hours) * time.Hour)
}

// String writes the period back in its input form.
func (p Period) String() string {
	var b strings.Builder
	for _, u := range []struct {
		n    int
		unit string
	}{{p.Years, "y"}, {p.Months, "mo"}, {p.Days, "d"}, {p.Hours, "h"}} {
		if u.n != 0 {
			b.WriteString(strconv.Itoa(u.n) + u.unit)
		}
	}
	if b.Len() == 0 {
		return "0d"
	}
	return b.String()
}

// MarshalText writes the period for YAML and JSON.
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the period from YAML and JSON.
func (p *Period) UnmarshalText(b []byte) error {
	v, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
