package dicomdeid

import "testing"

func TestScrubber(t *testing.T) {
	s := &scrubber{}
	s.add("Hong^Gildong=홍^길동", true)
	s.add("MRN1234567", false)
	for _, tc := range []struct{ in, want string }{
		{"CT chest for HONG gildong", "CT chest for ***"},
		{"Gildong seen", "*** seen"},
		{"Hong^Gildong follow-up", "*** follow-up"},
		{"홍길동 환자 흉부 CT", "*** 환자 흉부 CT"},
		{"Series 1 홍^길동", "Series 1 ***"},
		{"Hongkong trip, mrn1234567", "Hongkong trip, ***"}, // whole words only
		{"no identity here", "no identity here"},
	} {
		if got := s.apply(tc.in); got != tc.want {
			t.Errorf("apply(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanPatterns(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"call 010-1234-5678 today", "call *** today"},
		{"RRN 800101-1234567", "RRN ***"},
		{"seen 2021-03-04 and 04/03/2021", "seen *** and ***"},
		{"mail kim@example.org", "mail ***"},
		{"chart A1234567", "chart ***"},
		{"CT chest 5mm, 120 kV", "CT chest 5mm, 120 kV"},
	} {
		if got := cleanPatterns(tc.in); got != tc.want {
			t.Errorf("cleanPatterns(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTagString(t *testing.T) {
	if got, want := (Tag{0x7FE0, 0x0010}).String(), "(7FE0,0010)"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
