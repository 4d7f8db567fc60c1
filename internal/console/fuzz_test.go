package console

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseDay feeds the audit search's date fields: any input gives a
// time or an invalid-input error, never a panic.
func FuzzParseDay(f *testing.F) {
	for _, s := range []string{"2026-03-02", "2026-03-02T09:30", "", " 2026-13-40 ", "2026-02-29", "\xff"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, end bool) {
		d, err := parseDay(s, end)
		if err == nil && strings.TrimSpace(s) != "" && d.IsZero() {
			t.Errorf("parseDay(%q) accepted the input but gave no time", s)
		}
	})
}

// FuzzDepartment feeds the display's path: a department either passes the
// check (and is then safe as a path part and a query value) or is refused.
func FuzzDepartment(f *testing.F) {
	for _, s := range []string{"internal_medicine", "../console", "a", "", "ER-1", "응급실", strings.Repeat("a", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkDepartment(s) != nil {
			return
		}
		if len(s) > 64 || strings.ContainsAny(s, "/.?#%& ") || !utf8.ValidString(s) {
			t.Errorf("checkDepartment accepted %q", s)
		}
	})
}

// FuzzActivationCode feeds the typed activation code: normalizing is
// idempotent and keeps only what a code can hold after case folding.
func FuzzActivationCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH-IJKL-MNOP", "abcd efgh ijkl mnop", "", "----", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := normalizeCode(s)
		if normalizeCode(n) != n {
			t.Errorf("normalizeCode is not idempotent on %q", s)
		}
		if strings.ContainsAny(n, "- abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("normalizeCode(%q) = %q keeps separators or lower case", s, n)
		}
	})
}

// FuzzLocalPath: whatever localPath lets through is a path of this site
// for a browser too.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/console/", "/\t/evil.example", "//evil", "/\\evil", "https://x", "/a?b=c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := localPath(s)
		if got == "/" {
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") ||
			strings.ContainsAny(got, "\\\t\r\n ") {
			t.Errorf("localPath(%q) = %q leaves the site", s, got)
		}
	})
}
