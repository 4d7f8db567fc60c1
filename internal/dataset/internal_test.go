package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/records"
)

func TestJSONValue(t *testing.T) {
	doc := decodePayload([]byte(`{"a":{"b":[{"c":"x"},{"c":7.5}]},"n":12,"t":true,"s":"κείμενο","o":{"p":1}}`))
	tests := []struct{ path, want string }{
		{"a.b.0.c", "x"},
		{"a.b.1.c", "7.5"},
		{"n", "12"},
		{"t", "true"},
		{"s", "κείμενο"},
		{"o", ""},
		{"a.b.2.c", ""},
		{"a.b.x", ""},
		{"missing.deeper", ""},
		{"n.deeper", ""},
	}
	for _, tt := range tests {
		if got := jsonValue(doc, tt.path); got != tt.want {
			t.Errorf("jsonValue(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got := jsonValue(decodePayload([]byte("not json")), "a"); got != "" {
		t.Errorf("a path into text gave %q", got)
	}
}

func TestAgeAt(t *testing.T) {
	at := time.Date(2024, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct{ birth, want string }{
		{"1950-03-14", "74"},
		{"1950-03-15", "73"},
		{"1950-02-28", "74"},
		{"2024-03-14", "0"},
		{"2025-01-01", ""},
		{"", ""},
		{"14/03/1950", ""},
	}
	for _, tt := range tests {
		if got := ageAt(tt.birth, at); got != tt.want {
			t.Errorf("ageAt(%q) = %q, want %q", tt.birth, got, tt.want)
		}
	}
}

func TestRowsOf(t *testing.T) {
	at := time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)
	x := records.Extract{PatientID: "pt_1", Patient: &records.Patient{Name: "김민수", BirthDate: "1980-06-01", Sex: "male", Address: "서울특별시 강남구 테헤란로 1"},
		Records: []records.Record{
			{ID: "rec_a", Class: "encounter", Code: "E11.9", Effective: at, Payload: []byte(`{"los":3}`)},
			{ID: "rec_b", Class: "encounter", Code: "I10", Effective: at.AddDate(1, 0, 0), Payload: []byte(`{"los":5}`)},
		}}
	fields := []Field{{"p", "patient.id"}, {"age", "patient.age"}, {"code", "record.code"}, {"day", "record.effective"}, {"los", "record.payload.los"}}
	s := &Spec{Rows: RowsRecord, Cohort: Cohort{Classes: []string{"encounter"}}, Fields: fields}
	got := s.rowsOf(x, at)
	want := []sourceRow{
		{Cells: []string{"pt_1", "43", "E11.9", "2024-01-10", "3"}, Patient: "pt_1", Records: []string{"rec_a"}},
		{Cells: []string{"pt_1", "44", "I10", "2025-01-10", "5"}, Patient: "pt_1", Records: []string{"rec_b"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record rows (-want +got):\n%s", diff)
	}
	s.Fields = append(fields, Field{"n", "count.encounter"})
	s.Rows = RowsPatient
	got = s.rowsOf(x, at)
	want = []sourceRow{{Cells: []string{"pt_1", "44", "I10", "2025-01-10", "5", "2"}, Patient: "pt_1", Records: []string{"rec_a", "rec_b"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patient row, from the latest record (-want +got):\n%s", diff)
	}
}

// TestPatientLevelSuppression: rows of classes with fewer than k distinct
// patients are suppressed within the limit, and refused beyond it.
func TestPatientLevelSuppression(t *testing.T) {
	// Class "a" holds 4 rows of one patient, class "b" 4 rows of 4.
	res := &tabular.Result{Table: &tabular.Table{Columns: []string{"q"}}, Records: 8, Reached: tabular.Reached{K: 4}}
	var sources []sourceRow
	for i := range 8 {
		q, p := "a", "pt_one"
		if i >= 4 {
			q, p = "b", "pt_"+string(rune('a'+i))
		}
		res.Table.Rows = append(res.Table.Rows, []string{q})
		res.RowSource = append(res.RowSource, i)
		sources = append(sources, sourceRow{Patient: p})
	}
	jobFor := func(maxSupp float64) *job {
		return &job{req: CreateRequest{Spec: &Spec{Deid: tabular.Spec{QuasiIdentifiers: []tabular.QI{{Column: "q", Hierarchy: "flat"}},
			K: 4, MaxSuppression: maxSupp, MaxRisk: 0.5}}}}
	}
	clone := func() *released {
		r := *res
		r.Table = &tabular.Table{Columns: res.Table.Columns, Rows: append([][]string(nil), res.Table.Rows...)}
		r.RowSource = append([]int(nil), res.RowSource...)
		return &released{res: &r, sources: sources}
	}
	rel := clone()
	if err := jobFor(0.5).checkPatients(rel); err != nil {
		t.Fatal(err)
	}
	if len(rel.res.Table.Rows) != 4 || rel.res.Suppressed != 4 || rel.minPats != 4 || rel.res.Reached.K != 4 {
		t.Errorf("after suppression: %d rows, %d suppressed, %d patients per class, k %d; want 4, 4, 4, 4",
			len(rel.res.Table.Rows), rel.res.Suppressed, rel.minPats, rel.res.Reached.K)
	}
	if !slicesEqual(rel.res.RowSource, []int{4, 5, 6, 7}) {
		t.Errorf("row sources %v, want the rows of class b", rel.res.RowSource)
	}
	err := jobFor(0.25).checkPatients(clone())
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "fewer than k = 4 distinct patients") {
		t.Errorf("beyond the suppression limit: %v", err)
	}
}

func slicesEqual(a, b []int) bool { return cmp.Equal(a, b) }

func TestLineProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &lineProgress{w: &buf, interval: 10 * time.Second, now: func() time.Time { return now }}
	p.Start("patients", 1000)
	for range 10 {
		now = now.Add(time.Second)
		p.Add(50)
	}
	now = now.Add(10 * time.Second)
	p.Add(500)
	p.Finish()
	want := "patients: 500/1000 (50%), 50/s, ETA 10s\npatients: 1000/1000 (100%), 50/s done\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTableFilesRoundTrip(t *testing.T) {
	tab := &tabular.Table{Columns: []string{"name", "age", "note"}, Rows: [][]string{
		{"a", "40-49", "line one\nline \"two\", 환자"}, {"", "*", ""}, {"c", "90+", "{\"json\": true}"},
	}}
	dir := t.TempDir()
	for _, format := range []string{FormatCSV, FormatParquet} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(dir, DataFile(format))
			e, err := WriteTableFile(path, format, tab)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(path)
			if e.Rows != 3 || e.Bytes != st.Size() || len(e.SHA256) != 64 {
				t.Errorf("entry %+v for a %d-byte file", e, st.Size())
			}
			got, err := ReadTableFile(path)
			if err != nil {
				t.Fatal(err)
			}
			byName := func(tt *tabular.Table) map[string][]string {
				m := map[string][]string{}
				for i, c := range tt.Columns {
					for _, r := range tt.Rows {
						m[c] = append(m[c], r[i])
					}
				}
				return m
			}
			if diff := cmp.Diff(byName(tab), byName(got)); diff != "" {
				t.Errorf("read back (-wrote +read):\n%s", diff)
			}
		})
	}
	nd := filepath.Join(dir, "data.ndjson")
	if _, err := WriteTableFile(nd, FormatNDJSON, tab); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(nd)
	if first, _, _ := strings.Cut(string(b), "\n"); first != `{"name":"a","age":"40-49","note":"line one\nline \"two\", 환자"}` {
		t.Errorf("first NDJSON line %s", first)
	}
}

// TestTruncatedParquet: every truncation of a Parquet file is a clear
// ErrBadParquet, never a panic or a silent short table.
func TestTruncatedParquet(t *testing.T) {
	tab := &tabular.Table{Columns: []string{"a", "b"}}
	for i := range 300 {
		tab.Rows = append(tab.Rows, []string{strings.Repeat("x", i%7), "v" + string(rune('a'+i%26))})
	}
	path := filepath.Join(t.TempDir(), "t.parquet")
	if _, err := WriteTableFile(path, FormatParquet, tab); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	for n := 0; n < len(full); n += max(1, len(full)/97) {
		_, err := ReadParquet(bytes.NewReader(full[:n]), int64(n))
		if !errors.Is(err, ErrBadParquet) {
			t.Fatalf("truncated to %d of %d bytes: %v, want ErrBadParquet", n, len(full), err)
		}
	}
	if _, err := ReadParquet(bytes.NewReader([]byte("a,b\n1,2\n")), 8); !errors.Is(err, ErrBadParquet) {
		t.Errorf("a CSV read as Parquet: %v", err)
	}
	// A footer length of 2 GB in a 20-byte file: refused before anything
	// that size is allocated (a fuzzer found the library would).
	huge := append([]byte("PAR1"), make([]byte, 8)...)
	huge = binary.LittleEndian.AppendUint32(huge, 1<<31-1)
	huge = append(huge, "PAR1"...)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := ReadParquet(bytes.NewReader(huge), int64(len(huge)))
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, ErrBadParquet) || m1.TotalAlloc-m0.TotalAlloc > 1<<20 {
		t.Errorf("a 2 GB footer claim: %v after allocating %d bytes", err, m1.TotalAlloc-m0.TotalAlloc)
	}
}

func TestParseJournal(t *testing.T) {
	good := `{"format":"medsec-dataset-job/1","dataset":"ds_x","spec_sha256":"` + strings.Repeat("a", 64) +
		`","output_format":"csv","unit_size":20,"units":[{"index":0,"sha256":"` + strings.Repeat("b", 64) + `","rows":3}]}`
	if _, err := parseJournal([]byte(good)); err != nil {
		t.Fatalf("good journal: %v", err)
	}
	bad := map[string]string{
		"unknown field": strings.Replace(good, `"units"`, `"unitz"`, 1),
		"other format":  strings.Replace(good, "job/1", "job/2", 1),
		"unit twice":    strings.Replace(good, `"rows":3}]`, `"rows":3},{"index":0,"sha256":"`+strings.Repeat("b", 64)+`","rows":3}]`, 1),
		"short hash":    strings.Replace(good, strings.Repeat("b", 64), "bb", 1),
		"unit size":     strings.Replace(good, `"unit_size":20`, `"unit_size":0`, 1),
		"trailing data": good + "{}",
	}
	for name, j := range bad {
		if _, err := parseJournal([]byte(j)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
