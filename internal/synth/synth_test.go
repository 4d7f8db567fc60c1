package synth

import (
	"regexp"
	"testing"
)

func TestPersonShape(t *testing.T) {
	g := New(1)
	rrn := regexp.MustCompile(`^\d{6}-[1-4]\d{6}$`)
	phone := regexp.MustCompile(`^010-\d{4}-\d{4}$`)
	seen := map[string]bool{}
	for range 200 {
		p := g.Person()
		if !rrn.MatchString(p.RRN) || !phone.MatchString(p.Phone) {
			t.Fatalf("malformed person %+v", p)
		}
		digits := p.RRN[:6] + p.RRN[7:]
		if got := RRNCheckDigit(digits); int(digits[12]-'0') != got {
			t.Errorf("RRN %s has check digit %c, want %d", p.RRN, digits[12], got)
		}
		if p.RRN[:2] != p.BirthDate[2:4] || p.RRN[2:4] != p.BirthDate[5:7] {
			t.Errorf("RRN %s does not match birth date %s", p.RRN, p.BirthDate)
		}
		seen[p.Name] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct names in 200 people", len(seen))
	}
	if New(7).Person() != New(7).Person() {
		t.Error("the same seed gave different people")
	}
}

func TestRRNCheckDigitKnownAnswer(t *testing.T) {
	// 900101-123456?: 9*2+0*3+0*4+1*5+0*6+1*7+1*8+2*9+3*2+4*3+5*4+6*5 = 124;
	// 124 mod 11 = 3; (11-3) mod 10 = 8.
	if got := RRNCheckDigit("900101123456"); got != 8 {
		t.Errorf("got %d, want 8", got)
	}
}
