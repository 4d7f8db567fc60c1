package tabular

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadSpec(t *testing.T) {
	fsys := fstest.MapFS{
		"specs/ai.yaml": {Data: []byte(`
quasi_identifiers:
  - column: age
    hierarchy: age
    min_level: 1
  - column: department
    hierarchy_file: hierarchies/department.csv
k: 3
max_suppression: 0.05
drop: [name]
`)},
		"specs/hierarchies/department.csv": {Data: []byte(DepartmentHierarchyCSV)},
		"specs/typo.yaml":                  {Data: []byte("quasi_identifiers: []\nk: 3\nmax_supression: 0.05\n")},
		"specs/missing.yaml":               {Data: []byte("quasi_identifiers:\n  - column: d\n    hierarchy_file: nope.csv\nk: 2\n")},
	}
	spec, err := ReadSpec(fsys, "specs/ai.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if spec.K != 3 || spec.QuasiIdentifiers[0].MinLevel != 1 || spec.QuasiIdentifiers[1].Custom == nil {
		t.Fatalf("spec read as %+v", spec)
	}
	tab := table([]string{"name", "age", "department"},
		[]string{"a", "95", "Cardiology"}, []string{"b", "93", "Neurology"}, []string{"c", "91", "Oncology"})
	res, err := Anonymize(context.Background(), tab, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Table.Rows[0]; got[0] != "90+" || got[1] != "Medical" {
		t.Errorf("first row %q, want age top-coded by min_level and department as its division", got)
	}
	if _, err := ReadSpec(fsys, "specs/typo.yaml"); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), "max_supression") {
		t.Errorf("typo: got %v, want ErrSpec naming the unknown field", err)
	}
	if _, err := ReadSpec(fsys, "specs/missing.yaml"); err == nil || !strings.Contains(err.Error(), `"d"`) {
		t.Errorf("missing hierarchy file: got %v, want an error naming the column", err)
	}
}
