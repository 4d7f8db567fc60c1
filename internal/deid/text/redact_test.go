package text

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var testSecret = []byte("medsec test secret, not a real key")

func surrogateRedactor(opt Options) *Redactor {
	opt.Mode = Surrogates
	if opt.Secret == nil {
		opt.Secret = testSecret
	}
	return NewRedactor(opt)
}

func TestRedactTags(t *testing.T) {
	in := "환자 김민수(M/67) 연락처 010-1234-5678, seen by Dr. Okafor on 2023-03-14."
	want := "환자 [NAME](M/67) 연락처 [PHONE], seen by Dr. [NAME] on [DATE]."
	got, fs := NewRedactor(Options{}).Redact(in)
	if got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if len(fs) != 4 {
		t.Errorf("got %d findings, want 4: %v", len(fs), fs)
	}
}

func TestRedactMinConfidence(t *testing.T) {
	in := "Result 6/5." // a bare day/month without context is a weak guess
	if got, _ := NewRedactor(Options{}).Redact(in); got != in {
		t.Errorf("default threshold: got %q, want the text unchanged", got)
	}
	if got, _ := NewRedactor(Options{MinConfidence: 0.25}).Redact(in); got != "Result [DATE]." {
		t.Errorf("low threshold: got %q, want %q", got, "Result [DATE].")
	}
}

func TestSurrogatesDeterministic(t *testing.T) {
	in := "Patient Margaret Sullivan, MRN 00482913, phone 617-555-0143, seen 2023-03-14."
	a, _ := surrogateRedactor(Options{}).Redact(in)
	b, _ := surrogateRedactor(Options{}).Redact(in)
	c, _ := surrogateRedactor(Options{Secret: []byte("another secret")}).Redact(in)
	if a != b {
		t.Errorf("same secret gave %q and %q, want equal", a, b)
	}
	if a == c {
		t.Errorf("different secrets gave the same output %q", a)
	}
	for _, phi := range []string{"Margaret", "Sullivan", "00482913", "555-0143", "2023-03-14"} {
		if strings.Contains(a, phi) {
			t.Errorf("surrogate output %q still holds %q", a, phi)
		}
	}
}

// TestSurrogateSamePerson checks that a name maps to the same surrogate in
// different notes of a dataset, and that a later surname-only mention in a
// note follows the full name.
func TestSurrogateSamePerson(t *testing.T) {
	red := surrogateRedactor(Options{})
	a, _ := red.Redact("Seen by Dr. Okafor today.")
	b, _ := red.Redact("Dr. Okafor called back about the CT.")
	sur := between(a, "Dr. ", " today")
	if sur == "" || !strings.Contains(b, "Dr. "+sur+" called") {
		t.Errorf("surrogate %q of the first note not in the second: %q", sur, b)
	}
	c, _ := red.Redact("Robert Alvarez was admitted. Mr. Alvarez is stable.")
	full := between(c, "", " was admitted")
	last := between(c, "Mr. ", " is stable")
	if f := strings.Fields(full); len(f) != 2 || f[1] != last {
		t.Errorf("full name surrogate %q and later mention %q disagree", full, last)
	}
}

// TestSurrogateNameOrder checks that "Last, First" keeps a family name in
// front and that a romanized Korean family name on its own stays Korean.
func TestSurrogateNameOrder(t *testing.T) {
	red := surrogateRedactor(Options{})
	out, _ := red.Redact("Patient: Kowalczyk, Anna")
	last, first, ok := strings.Cut(strings.TrimPrefix(out, "Patient: "), ", ")
	if !ok || !lex().surnames[strings.ToLower(last)] || !lex().female[strings.ToLower(first)] {
		t.Errorf("Redact = %q, want \"Patient: <family name>, <woman's given name>\"", out)
	}
	out, _ = red.Redact("Seen by Dr. Kim.")
	if sur := between(out, "Dr. ", "."); !isKoSurnameRoman(sur) {
		t.Errorf("Redact = %q, want a romanized Korean family name after Dr.", out)
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestSurrogateNameScript(t *testing.T) {
	red := surrogateRedactor(Options{})
	out, _ := red.Redact("환자 김민수 님 내원.")
	name := between(out, "환자 ", " 님")
	if utf8.RuneCountInString(name) != 3 || !allHangul(name) || name == "김민수" {
		t.Errorf("Hangul name surrogate = %q, want three other Hangul syllables", name)
	}
	out, _ = red.Redact("Wife Lee Seo-yeon at bedside.")
	name = between(out, "Wife ", " at")
	if !regexp.MustCompile(`^[A-Z][a-z]+ [A-Z][a-z]+-[a-z]+$`).MatchString(name) || name == "Lee Seo-yeon" {
		t.Errorf("romanized Korean surrogate = %q, want the shape Surname Given-name", name)
	}
}

func allHangul(s string) bool {
	for _, r := range s {
		if !unicode.Is(unicode.Hangul, r) {
			return false
		}
	}
	return true
}

// TestSurrogateDates checks that dates keep their notation and their
// intervals.
func TestSurrogateDates(t *testing.T) {
	red := surrogateRedactor(Options{})
	out, _ := red.Redact("Admitted 2021-03-14, discharged 2021-03-20.")
	m := regexp.MustCompile(`\d{4}-\d{2}-\d{2}`).FindAllString(out, -1)
	if len(m) != 2 {
		t.Fatalf("output %q: want two ISO dates", out)
	}
	a, _ := time.Parse("2006-01-02", m[0])
	b, _ := time.Parse("2006-01-02", m[1])
	if b.Sub(a) != 6*24*time.Hour || m[0] == "2021-03-14" {
		t.Errorf("shifted dates %v, want a shift that keeps the 6-day stay", m)
	}
	tests := []struct {
		in, want string
	}{
		{"입원 2021년 3월 14일.", "입원 2021년 3월 24일."},
		{"Seen March 14, 2021.", "Seen March 24, 2021."},
		{"Seen 14 Mar 2021.", "Seen 24 Mar 2021."},
		{"DOB 04/17/1931.", "DOB 04/27/1931."},
		{"Return Tuesday, May 14, 2024.", "Return Friday, May 24, 2024."},
		{"Seen on the 3rd of March.", "Seen on the 13th of March."},
		{"Fell on April 11th.", "Fell on April 21st."},
		{"내원 2024. 3. 14. 오전", "내원 2024. 3. 24. 오전"},
		{"DOB 910228-1******", "DOB 910310-1******"},
		{"Admit 05MAR2024.", "Admit 15MAR2024."},
	}
	shifted := surrogateRedactor(Options{DateShiftDays: 10})
	for _, tt := range tests {
		if got, _ := shifted.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSurrogateShapes(t *testing.T) {
	red := surrogateRedactor(Options{})
	tests := []struct {
		in    string
		shape string
	}{
		{"연락처 010-1234-5678", `^연락처 010-\d{4}-\d{4}$`},
		{"Tel (617) 555-0143", `^Tel \(\d{3}\) \d{3}-\d{4}$`},
		{"aged 95", `^aged 90$`},
		{"MRN: 00482913", `^MRN: \d{8}$`},
		{"Member ID XBH847203115", `^Member ID [A-Z]{3}\d{9}$`},
		{"SSN 219-09-9999", `^SSN 9\d{2}-\d{2}-\d{4}$`},
		{"mail jane.doe@example.com", `^mail [a-z'.]+\d{2}@example\.org$`},
		{"from 192.168.0.12", `^from 10\.\d+\.\d+\.\d+$`},
		{"주소 서울특별시 강남구 테헤란로 123", `^주소 \p{Hangul}+ .*\d+$`},
	}
	for _, tt := range tests {
		got, _ := red.Redact(tt.in)
		if !regexp.MustCompile(tt.shape).MatchString(got) || got == tt.in {
			t.Errorf("Redact(%q) = %q, want a different value shaped %s", tt.in, got, tt.shape)
		}
	}
}

// TestSurrogateRRN checks that a surrogate registration number keeps the
// structure (valid date, same sex/century digit) but never carries a valid
// pre-2020 check digit, so it cannot be someone's real number.
func TestSurrogateRRN(t *testing.T) {
	red := surrogateRedactor(Options{})
	for _, rrn := range []string{"520314-1526019", "210304-4252763", "830517-2613181"} {
		out, _ := red.Redact("주민등록번호 " + rrn)
		got := strings.TrimPrefix(out, "주민등록번호 ")
		digits := strings.ReplaceAll(got, "-", "")
		if len(digits) != 13 || got == rrn || digits[6] != rrn[7] {
			t.Errorf("surrogate of %s = %s, want 13 digits with the same sex digit", rrn, got)
			continue
		}
		if rrnConfidence(digits, false, false) == 0 {
			t.Errorf("surrogate %s has no valid birth date", got)
		}
		if rrnCheckDigitOK(digits) {
			t.Errorf("surrogate %s has a valid check digit", got)
		}
	}
}

func TestRedactReader(t *testing.T) {
	red := NewRedactor(Options{})
	note := "환자 김민수 님, 연락처 010-1234-5678.\nSeen by Dr. Okafor on 2023-03-14.\n\n"
	var in strings.Builder
	for in.Len() < 3*maxChunk {
		in.WriteString(note)
	}
	var out strings.Builder
	if err := RedactReader(context.Background(), strings.NewReader(in.String()), &out, red); err != nil {
		t.Fatal(err)
	}
	want, _ := red.Redact(note)
	if got := out.String(); got != strings.Repeat(want, in.Len()/len(note)) {
		t.Errorf("streamed output differs from per-note redaction (len %d, want %d)", len(got), in.Len()/len(note)*len(want))
	}
}

func TestRedactReaderCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := RedactReader(ctx, strings.NewReader("Dr. Okafor"), &strings.Builder{}, NewRedactor(Options{}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestRedactConcurrent shares one Redactor between goroutines; run with
// -race to check that it is safe.
func TestRedactConcurrent(t *testing.T) {
	red := surrogateRedactor(Options{})
	in := "환자 김민수 님, Dr. Okafor, 2023-03-14, 010-1234-5678"
	want, _ := red.Redact(in)
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			got, _ := red.Redact(in)
			if got != want {
				errs <- got
				return
			}
			errs <- ""
		}()
	}
	for range 8 {
		if got := <-errs; got != "" {
			t.Errorf("concurrent Redact = %q, want %q", got, want)
		}
	}
}
