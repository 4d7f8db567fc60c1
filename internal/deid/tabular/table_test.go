package tabular

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestReadCSV(t *testing.T) {
	got, err := ReadCSV(strings.NewReader("\ufeffage, sex ,zip\n45,M,06236\n\"90+\",F,\"1234\"\"5\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Table{Columns: []string{"age", "sex", "zip"}, Rows: [][]string{{"45", "M", "06236"}, {"90+", "F", `1234"5`}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadCSV mismatch (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, got); err != nil {
		t.Fatal(err)
	}
	again, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("round trip mismatch (-first +second):\n%s", diff)
	}
}

func TestReadCSVErrors(t *testing.T) {
	tests := []struct {
		name, in string
		sentinel error
		says     []string
	}{
		{"empty", "", ErrEmpty, []string{"no header"}},
		{"header only", "a,b\n", ErrEmpty, []string{"no rows"}},
		{"broken quoting", "a,b\n1,\"open\n2,3\n", ErrBadCSV, []string{"line", "quote"}},
		{"bare quote", "a,b\n1,x\"y\n", ErrBadCSV, []string{"line 2", "bare"}},
		{"ragged row", "a,b\n1,2\n3\n", ErrBadCSV, []string{"line 3", "number of fields"}},
		{"bad utf-8", "a,name\n1,ok\n2,\xb1\xe8\n", ErrBadCSV, []string{"row 2", "line 3", "column 2", `"name"`, "EUC-KR"}},
		{"bad utf-8 header", "a,\xff\n1,2\n", ErrBadCSV, []string{"header column 2"}},
		{"duplicate header", "id,age,id\n1,2,3\n", ErrBadCSV, []string{`"id"`, "twice", "1 and 3"}},
		{"empty header", "id,,x\n1,2,3\n", ErrBadCSV, []string{"column 2 is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tc.in))
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("got %v, want %v", err, tc.sentinel)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestReadCSVKeepsValuesOutOfErrors(t *testing.T) {
	_, err := ReadCSV(strings.NewReader("name,rrn\n홍길동,\"800101-1234567\n"))
	if err == nil {
		t.Fatal("got no error for an unterminated quote")
	}
	if strings.Contains(err.Error(), "800101") || strings.Contains(err.Error(), "홍길동") {
		t.Errorf("error %q repeats cell contents", err)
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("age,sex\n45,M\n"))
	f.Add([]byte("a,b\n1,\"x\"\"y\"\n"))
	f.Add([]byte("\ufeffa;b\n1;2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ReadCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range tab.Columns {
			if c == "" || seen[c] || !utf8.ValidString(c) {
				t.Fatalf("accepted bad header %q", tab.Columns)
			}
			seen[c] = true
		}
		if len(tab.Rows) == 0 {
			t.Fatal("accepted a table without rows")
		}
		for _, row := range tab.Rows {
			if len(row) != len(tab.Columns) {
				t.Fatalf("row has %d cells, header %d", len(row), len(tab.Columns))
			}
			for _, cell := range row {
				if !utf8.ValidString(cell) {
					t.Fatal("accepted invalid UTF-8")
				}
			}
		}
	})
}
