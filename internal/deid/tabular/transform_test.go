package tabular

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"
)

func testSecret(b byte) []byte { return bytes.Repeat([]byte{b}, MinSecretLen) }

func TestPseudonyms(t *testing.T) {
	p1, err := NewPseudonymizer(testSecret(1))
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := NewPseudonymizer(testSecret(2))
	a, again, b := p1.Pseudonym("P10000001"), p1.Pseudonym("P10000001"), p1.Pseudonym("P10000002")
	if a != again {
		t.Errorf("same identifier, same secret: got %q and %q, want equal", a, again)
	}
	if a == b {
		t.Errorf("different identifiers got the same pseudonym %q", a)
	}
	if other := p2.Pseudonym("P10000001"); other == a {
		t.Errorf("another dataset's secret gave the same pseudonym %q: datasets would be linkable", a)
	}
	if len(a) != 16 {
		t.Errorf("pseudonym %q has %d characters, want 16", a, len(a))
	}
	if p1.Pseudonym("") != "" {
		t.Error("an empty identifier got a pseudonym")
	}
	if _, err := NewPseudonymizer(make([]byte, 16)); !errors.Is(err, ErrNoSecret) {
		t.Errorf("short secret: got %v, want ErrNoSecret", err)
	}
}

func TestDateShiftKeepsIntervals(t *testing.T) {
	p, _ := NewPseudonymizer(testSecret(3))
	const maxDays = 30
	seen := map[int]bool{}
	for i := range 500 {
		patient := "P" + strconv.Itoa(i)
		in, _ := p.ShiftDate("2023-02-27", patient, maxDays)
		out, _ := p.ShiftDate("2023-03-02", patient, maxDays)
		a, _ := time.Parse("2006-01-02", in)
		b, _ := time.Parse("2006-01-02", out)
		if got := b.Sub(a); got != 3*24*time.Hour {
			t.Fatalf("patient %s: interval became %v, want 72h", patient, got)
		}
		d := p.ShiftDays(patient, maxDays)
		if d == 0 || d < -maxDays || d > maxDays {
			t.Fatalf("patient %s: shift %d outside ±%d or zero", patient, d, maxDays)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Errorf("500 patients got only %d different shifts, want them spread over ±%d", len(seen), maxDays)
	}
	got, ok := p.ShiftDate("2023-03-02 14:05:00", "P1", maxDays)
	if _, err := time.Parse("2006-01-02 15:04:05", got); !ok || err != nil {
		t.Errorf("shifted datetime %q lost its layout", got)
	}
}

func TestMicroAggregate(t *testing.T) {
	col := []string{"10", "1", "", "4", "7", "2", "100", "5"}
	if err := microAggregateColumn(col, 3); err != nil {
		t.Fatal(err)
	}
	// sorted: 1 2 4 | 5 7 10 100 → means 2.33 → "2", 30.5 → "30" or "31"
	groups := map[string]int{}
	for _, v := range col {
		groups[v]++
	}
	if col[2] != "" {
		t.Errorf("empty cell became %q", col[2])
	}
	for v, n := range groups {
		if v != "" && n < 3 {
			t.Errorf("value %q shared by %d records, want at least 3", v, n)
		}
	}
	if col[1] != col[5] || col[1] != col[3] || col[0] != col[6] {
		t.Errorf("groups by sorted order broken: %q", col)
	}
	if err := microAggregateColumn([]string{"1", "x"}, 2); !errors.Is(err, ErrSpec) {
		t.Errorf("non-numeric: got %v, want ErrSpec", err)
	}
	dec := []string{"1.25", "1.75", "3.5"}
	microAggregateColumn(dec, 3)
	if dec[0] != "2.17" {
		t.Errorf("mean of 1.25, 1.75, 3.5 written as %q, want 2.17", dec[0])
	}
}
