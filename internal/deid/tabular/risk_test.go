package tabular

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// table builds a table from rows; the first row is the header.
func table(rows ...[]string) *Table { return &Table{Columns: rows[0], Rows: rows[1:]} }

func TestMeasureRiskByHand(t *testing.T) {
	// classes over (age, zip): {40,A}×1, {50,B}×2, {60,C}×3
	sample := table(
		[]string{"age", "zip", "dx"},
		[]string{"40", "A", "x"},
		[]string{"50", "B", "x"}, []string{"50", "B", "y"},
		[]string{"60", "C", "x"}, []string{"60", "C", "y"}, []string{"60", "C", "z"},
	)
	approx := cmpopts.EquateApprox(0, 1e-12)
	got, err := MeasureRisk(sample, []string{"age", "zip"}, RiskOptions{Threshold: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	want := Risk{
		Records: 6, Classes: 3,
		ProsecutorMax: 1, ProsecutorAvg: 3.0 / 6,
		JournalistMax: 1, JournalistAvg: 3.0 / 6, Marketer: 3.0 / 6,
		Threshold: 0.4, AtRisk: 3.0 / 6, // the classes of 1 and 2 records are above 0.4
	}
	if diff := cmp.Diff(want, got, approx, cmpopts.IgnoreFields(Risk{}, "Drivers")); diff != "" {
		t.Errorf("sample risk mismatch (-want +got):\n%s", diff)
	}

	// population: {40,A}×2, {50,B}×4, {60,C}×3, and others
	pop := table(
		[]string{"age", "zip"},
		[]string{"40", "A"}, []string{"40", "A"},
		[]string{"50", "B"}, []string{"50", "B"}, []string{"50", "B"}, []string{"50", "B"},
		[]string{"60", "C"}, []string{"60", "C"}, []string{"60", "C"},
		[]string{"70", "D"},
	)
	got, err = MeasureRisk(sample, []string{"age", "zip"}, RiskOptions{Population: pop, Threshold: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	avg := (1.0/2 + 2.0/4 + 3.0/3) / 6
	want.JournalistMax, want.JournalistAvg, want.Marketer = 0.5, avg, avg
	if diff := cmp.Diff(want, got, approx, cmpopts.IgnoreFields(Risk{}, "Drivers")); diff != "" {
		t.Errorf("journalist risk mismatch (-want +got):\n%s", diff)
	}
}

func TestRiskDrivers(t *testing.T) {
	// zip alone makes every record unique; age and sex alone leave classes of 3
	tab := table(
		[]string{"age", "sex", "zip"},
		[]string{"40", "F", "1"}, []string{"40", "F", "2"}, []string{"40", "F", "3"},
		[]string{"50", "M", "4"}, []string{"50", "M", "5"}, []string{"50", "M", "6"},
	)
	got, err := MeasureRisk(tab, []string{"age", "sex", "zip"}, RiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ProsecutorMax != 1 || len(got.Drivers) != 3 {
		t.Fatalf("got max %v with %d drivers, want 1 with 3", got.ProsecutorMax, len(got.Drivers))
	}
	first := got.Drivers[0]
	if first.QI != "zip" || math.Abs(first.ProsecutorMax-1.0/3) > 1e-12 || first.AtRisk != 1 {
		t.Errorf("first driver %+v, want zip with max risk 1/3 (threshold 0.2: all at risk)", first)
	}
	calm, _ := MeasureRisk(tab, []string{"age"}, RiskOptions{Threshold: 0.5})
	if calm.Drivers != nil {
		t.Errorf("risk below threshold still lists drivers %+v", calm.Drivers)
	}
}

func TestMeasureRiskErrors(t *testing.T) {
	tab := table([]string{"age"}, []string{"40"})
	if _, err := MeasureRisk(tab, []string{"zip"}, RiskOptions{}); !errors.Is(err, ErrSpec) {
		t.Errorf("missing column: got %v, want ErrSpec", err)
	}
	if _, err := MeasureRisk(&Table{Columns: []string{"age"}}, []string{"age"}, RiskOptions{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty table: got %v, want ErrEmpty", err)
	}
	if _, err := MeasureRisk(tab, nil, RiskOptions{}); !errors.Is(err, ErrSpec) {
		t.Errorf("no quasi-identifiers: got %v, want ErrSpec", err)
	}
}
