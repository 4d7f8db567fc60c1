package tabular

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuiltinHierarchies(t *testing.T) {
	tests := []struct {
		kind, value string
		want        []string
	}{
		{"age", "45", []string{"45", "45-49", "40-49", "40-59", "*"}},
		{"age", "89", []string{"89", "85-89", "80-89", "80+", "*"}},
		{"age", "93", []string{"93", "90+", "90+", "80+", "*"}},
		{"age", "90+", []string{"90+", "90+", "90+", "80+", "*"}},
		{"age", "", []string{"", "", "", "", "*"}},
		{"date", "2021-03-14", []string{"2021-03-14", "2021-03", "2021", "*"}},
		{"date", "20210314", []string{"20210314", "2021-03", "2021", "*"}},
		{"date", "2021-03-14T09:30:00Z", []string{"2021-03-14T09:30:00Z", "2021-03", "2021", "*"}},
		{"zip", "06236", []string{"06236", "0623*", "062**", "06***", "0****", "*"}},
		{"zip", "02139-4307", []string{"02139-4307", "0213*", "021**", "02***", "0****", "*"}},
		{"district", "서울특별시 강남구 테헤란로 152", []string{"서울특별시 강남구 테헤란로 152", "서울특별시 강남구", "서울특별시", "*"}},
		{"district", "경기도 성남시 분당구 판교역로 235", []string{"경기도 성남시 분당구 판교역로 235", "경기도 성남시 분당구", "경기도", "*"}},
		{"district", "세종특별자치시 한누리대로 2130", []string{"세종특별자치시 한누리대로 2130", "세종특별자치시", "세종특별자치시", "*"}},
		{"icd10", "E11.9", []string{"E11.9", "E11", "E00-E90", "*"}},
		{"icd10", "e119", []string{"e119", "E11", "E00-E90", "*"}},
		{"icd10", "C50.912", []string{"C50.912", "C50", "C00-D48", "*"}},
		{"icd10", "D49", []string{"D49", "D49", "C00-D48", "*"}},
		{"icd10", "T14.9", []string{"T14.9", "T14", "S00-T98", "*"}},
		{"icd10", "U07.1", []string{"U07.1", "U07", "U00-U99", "*"}},
		{"icd10", "Z99", []string{"Z99", "Z99", "Z00-Z99", "*"}},
		{"sex", "F", []string{"F", "*"}},
		{"flat", "Internal Medicine", []string{"Internal Medicine", "*"}},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.value, func(t *testing.T) {
			h, err := BuiltinHierarchy(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.Levels([]string{tc.value})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got[0]); diff != "" {
				t.Errorf("levels mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuiltinHierarchyRejects(t *testing.T) {
	good := map[string]string{"age": "1", "date": "2021-01-01", "zip": "06236", "icd10": "E11", "interval(10)": "1"}
	tests := []struct{ kind, value string }{
		{"age", "-3"}, {"age", "forty"}, {"age", "151"},
		{"date", "14/03/2021"}, {"date", "2021-13-01"},
		{"zip", "1234"}, {"zip", "12a45"}, {"zip", "123456"},
		{"icd10", "11.9"}, {"icd10", "E1"}, {"icd10", "E11.99999"}, {"icd10", "E11-9"},
		{"interval(10)", "ten"},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.value, func(t *testing.T) {
			h, err := BuiltinHierarchy(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.Levels([]string{good[tc.kind], tc.value})
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Index != 1 {
				t.Fatalf("got %v, want a ValueError for index 1", err)
			}
			if strings.Contains(err.Error(), tc.value) {
				t.Errorf("error %q repeats the value", err)
			}
		})
	}
}

func TestIntervalHierarchy(t *testing.T) {
	h, err := BuiltinHierarchy("interval(10)")
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Levels([]string{"3", "17", "35", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"3", "[0,10)", "[0,20)", "*"},
		{"17", "[10,20)", "[0,20)", "*"},
		{"35", "[30,40)", "[20,40)", "*"},
		{"", "", "", "*"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("levels mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"interval(0)", "interval(-1)", "interval(x)", "interval(10", "bands"} {
		if _, err := BuiltinHierarchy(bad); !errors.Is(err, ErrSpec) {
			t.Errorf("BuiltinHierarchy(%q): got %v, want ErrSpec", bad, err)
		}
	}
}

func TestParseHierarchy(t *testing.T) {
	h, err := ParseHierarchy(strings.NewReader("Cardiology;Medical\nOrthopedics;Surgical\n\"Ob;Gyn\";Surgical\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Levels([]string{"Orthopedics", "Ob;Gyn"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"Orthopedics", "Surgical", "*"}, {"Ob;Gyn", "Surgical", "*"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("levels mismatch (-want +got):\n%s", diff)
	}
	_, err = h.Levels([]string{"Cardiology", "Dermatology"})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Index != 1 {
		t.Errorf("unlisted value: got %v, want ValueError at index 1", err)
	}
}

func TestParseHierarchyErrors(t *testing.T) {
	tests := []struct{ name, in, says string }{
		{"empty", "", "no lines"},
		{"ragged", "a;x;*\nb;*\n", "line 2"},
		{"duplicate", "a;x;*\na;y;*\n", "line 2: value listed twice"},
		{"not a tree", "a;x;p;*\nb;x;q;*\n", "two parents"},
		{"bad utf-8", "a;\xff;*\n", "invalid UTF-8"},
		{"bad quote", "a;\"x;*\n", "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHierarchy(strings.NewReader(tc.in))
			if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want ErrSpec saying %q", err, tc.says)
			}
		})
	}
}

func FuzzParseHierarchy(f *testing.F) {
	f.Add([]byte(DepartmentHierarchyCSV))
	f.Add([]byte("E11.9;E11;E00-E90;*\nE11.0;E11;E00-E90;*\n"))
	f.Add([]byte("a\nb\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHierarchy(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		fh := h
		var values []string
		for _, line := range strings.Split(string(data), "\n") {
			if v, _, ok := strings.Cut(line, ";"); ok && !strings.ContainsAny(v, "\"\r") {
				values = append(values, v)
			}
		}
		chains, err := fh.Levels(values)
		if err != nil {
			return // a value the CSV reader unquoted differently
		}
		for _, c := range chains {
			if len(c) != len(chains[0]) || c[len(c)-1] != Top {
				t.Fatalf("chain %q: uneven or without a top", c)
			}
		}
	})
}
