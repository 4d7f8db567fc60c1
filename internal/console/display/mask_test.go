package display

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		in   string
		want string
	}{
		{"hangul three syllables", DefaultRule, "김민수", "김*수"},
		{"hangul two syllables", DefaultRule, "이수", "이*"},
		{"hangul four syllables", DefaultRule, "남궁민수", "남**수"},
		{"hangul one syllable", DefaultRule, "김", "*"},
		{"hangul decomposed jamo composed first", DefaultRule, "\u1100\u1175\u11B7\u1106\u1175\u11AB\u1109\u116E", "김*수"},
		{"latin with hyphen", DefaultRule, "Kim Ji-hun", "K** J*-h**"},
		{"latin apostrophe", DefaultRule, "Sean O'Brien", "S*** *'B****"},
		{"latin single letter part", DefaultRule, "J R", "* *"},
		{"latin accented", DefaultRule, "José Müller", "J*** M*****"},
		{"latin keep last", Rule{Char: "*", AlphabeticFirst: 1, AlphabeticLast: 1}, "Anna Lee", "A**a L*e"},
		{"keep more than the name has", Rule{Char: "*", AlphabeticFirst: 3, AlphabeticLast: 3, SyllabicFirst: 3, SyllabicLast: 3}, "Bo 김수", "B* 김*"},
		{"fixed width hides length", Rule{Char: "*", SyllabicFirst: 1, AlphabeticFirst: 1, Width: 2}, "김민수 Christopher", "김** C**"},
		{"other mask char", Rule{Char: "○", SyllabicFirst: 1, SyllabicLast: 1}, "박서준", "박○준"},
		{"digits are hidden", DefaultRule, "Patient 42", "P****** 4*"},
		{"control characters dropped", DefaultRule, "Kim\u0000\u200b Lee", "K** L**"},
		{"no letters", DefaultRule, " -- ", "*"},
		{"empty", DefaultRule, "", "*"},
		{"mixed scripts", DefaultRule, "김민수 (Minsu)", "김*수 (M****)"},
		{"spaces collapse to one kind", DefaultRule, "김\t민수", "* 민*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.Mask(tt.in); got != tt.want {
				t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestMaskNeverRevealsWholeName checks the guarantee every rule keeps:
// fewer letters are shown than the name has.
func TestMaskNeverRevealsWholeName(t *testing.T) {
	names := []string{"김민수", "이수", "Kim Ji-hun", "A", "Jo", "남궁 민", "ÅSA", "山田太郎", "Иван Петров"}
	rules := []Rule{DefaultRule, {Char: "*", SyllabicFirst: 3, SyllabicLast: 3, AlphabeticFirst: 3, AlphabeticLast: 3}, {Char: "#"}}
	for _, r := range rules {
		for _, n := range names {
			checkHides(t, r, n)
		}
	}
}

func checkHides(t *testing.T, r Rule, name string) {
	t.Helper()
	got := r.Mask(name)
	if !utf8.ValidString(got) {
		t.Fatalf("Mask(%q) = %q is not valid UTF-8", name, got)
	}
	in, out := letters(name), letters(got)
	if in > 0 && out >= in {
		t.Errorf("rule %+v: Mask(%q) = %q shows %d of %d letters", r, name, got, out, in)
	}
	if in > 0 && got == strings.TrimSpace(name) {
		t.Errorf("rule %+v: Mask(%q) returned the name unchanged", r, name)
	}
	if !strings.Contains(got, r.Char) {
		t.Errorf("rule %+v: Mask(%q) = %q has no mask character", r, name, got)
	}
}

func letters(s string) int {
	n := 0
	for _, r := range s {
		if classOf(r) != separator {
			n++
		}
	}
	return n
}

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		ok   bool
	}{
		{"default", DefaultRule, true},
		{"letter as mask", Rule{Char: "x"}, false},
		{"two characters", Rule{Char: "**"}, false},
		{"negative keep", Rule{Char: "*", SyllabicFirst: -1}, false},
		{"keeps too much", Rule{Char: "*", AlphabeticLast: 4}, false},
		{"width too wide", Rule{Char: "*", Width: 9}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rule.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir)
	if err != nil || s != Defaults {
		t.Fatalf("Load without a file = %+v, %v; want the defaults", s, err)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("mask:\n  char: \"#\"\n  syllabic_first: 1\n  alphabetic_first: 1\n  width: 3\nrefresh_seconds: 30\ncalling: 2\nwaiting: 5\n")
	s, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Mask.Mask("김민수"), "김###수"; got != want {
		t.Errorf("configured rule masks 김민수 as %q, want %q", got, want)
	}
	if s.RefreshSeconds != 30 || s.Calling != 2 || s.Waiting != 5 {
		t.Errorf("settings = %+v, want refresh 30, calling 2, waiting 5", s)
	}
	for _, bad := range []string{"mask:\n  char: a\n", "refresh: 3\n", "refresh_seconds: 1\n"} {
		write(bad)
		if _, err := Load(dir); err == nil {
			t.Errorf("Load accepted %q", bad)
		}
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{"김민수", "Kim Ji-hun", "", "-", "a\u0301b", "\xff\xfe", "山田 太郎", "O'Neil-Smith Jr."} {
		f.Add(s, 1, 1, 1, 0, 0)
	}
	f.Fuzz(func(t *testing.T, name string, sf, sl, af, al, width int) {
		r := Rule{Char: "*", SyllabicFirst: sf % 4, SyllabicLast: sl % 4, AlphabeticFirst: af % 4, AlphabeticLast: al % 4, Width: width % 9}
		if r.Validate() != nil {
			return
		}
		checkHides(t, r, name)
	})
}

func FuzzSettings(f *testing.F) {
	for _, s := range []string{"mask:\n  char: \"#\"\n", "refresh_seconds: 30\n", "calling: [1]\n", "mask: {width: 99}\n", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Errorf("Load accepted settings that do not validate: %v", err)
		}
		checkHides(t, s.Mask, "김민수 Kim")
	})
}

func BenchmarkMask(b *testing.B) {
	for b.Loop() {
		DefaultRule.Mask("김민수 Kim Ji-hun")
	}
}
