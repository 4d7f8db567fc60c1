package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"환자 김민수(M/67) 연락처 010-1234-5678, 2023년 3월 14일 입원.",
	"Seen by Dr. Okafor on March 14, 2021. MRN: 00482913. SSN 219-09-9999.",
	"주민등록번호 520314-1526019, 주소 서울특별시 강남구 테헤란로 123 (06236)",
	"From 192.168.0.12 and 2001:db8::17, mail jane.doe@example.org, https://x.example.org/a",
	"Parkinson's disease; BP 120/80; power 5/5; 92-year-old; aged 95; 6/5 follow-up",
	"Kim Min-su, Lee, Dong-hyun; 48 Orchard Lane, Northampton, MA 01060.",
	"\xff\xfe 김\xed\xa0\x80 010-\u00a01234 (((( 1/1/1 ::::: @@ www.",
}

// checkFindings asserts the invariants every caller relies on: offsets
// within bounds and on rune boundaries, Text matching the slice, sorted and
// not overlapping, confidence in (0, 1].
func checkFindings(t *testing.T, s string, fs []Finding) {
	t.Helper()
	starts := map[int]bool{len(s): true} // rune starts as a range loop decodes them
	for i := range s {
		starts[i] = true
	}
	last := 0
	for _, f := range fs {
		if f.Start < last || f.End <= f.Start || f.End > len(s) {
			t.Fatalf("finding %+v out of order or bounds (len %d, last end %d)", f, len(s), last)
		}
		if !starts[f.Start] || !starts[f.End] {
			t.Fatalf("finding %+v not on rune boundaries", f)
		}
		if s[f.Start:f.End] != f.Text {
			t.Fatalf("finding %+v: text differs from the slice %q", f, s[f.Start:f.End])
		}
		if f.Confidence <= 0 || f.Confidence > 1 {
			t.Fatalf("finding %+v: confidence out of range", f)
		}
		last = f.End
	}
}

func FuzzFind(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFindings(t, s, Find(s))
	})
}

// FuzzRedact checks, in Tags mode, that the output is the input with each
// finding replaced by its tag, and that no finding's text (of two runes or
// more) is left anywhere in the output as a word of its own.
func FuzzRedact(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	red := NewRedactor(Options{})
	sur := NewRedactor(Options{Mode: Surrogates, Secret: []byte("fuzz")})
	f.Fuzz(func(t *testing.T, s string) {
		out, fs := red.Redact(s)
		checkFindings(t, s, fs)
		var want strings.Builder
		last := 0
		for _, x := range fs {
			want.WriteString(s[last:x.Start] + "[" + string(x.Kind) + "]")
			last = x.End
		}
		want.WriteString(s[last:])
		if out != want.String() {
			t.Fatalf("Redact(%q) = %q, want %q", s, out, want.String())
		}
		for _, x := range fs {
			if utf8.RuneCountInString(x.Text) >= 2 && containsWholeWord(out, x.Text) {
				t.Fatalf("Redact(%q) = %q still holds %s %q", s, out, x.Kind, x.Text)
			}
		}
		sout, sfs := sur.Redact(s)
		checkFindings(t, s, sfs)
		if len(sfs) != len(fs) || utf8.ValidString(s) && !utf8.ValidString(sout) {
			t.Fatalf("surrogate mode: %d findings vs %d in tag mode, valid output %v", len(sfs), len(fs), utf8.ValidString(sout))
		}
	})
}

// containsWholeWord reports whether v occurs in s as a word of its own,
// by the same rule the sweep uses.
func containsWholeWord(s, v string) bool {
	for off := 0; ; {
		k := strings.Index(s[off:], v)
		if k < 0 {
			return false
		}
		k += off
		if wholeWord(s, k, k+len(v), nil) {
			return true
		}
		off = k + 1
	}
}
