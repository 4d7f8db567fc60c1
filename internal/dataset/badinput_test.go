package dataset_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
)

// TestRefusalsLeaveNothing: a risk above the limit, an unreachable model,
// an empty cohort and a cohort nobody consented for are refused with a
// clear error; no dataset or job directory is left, the register says why,
// and the refusal is audited.
func TestRefusalsLeaveNothing(t *testing.T) {
	f := newFixture(t, lifecycletest.SQLite, 80)
	base := dataset.SyntheticSpec(5)
	tests := []struct {
		name   string
		spec   string
		want   error
		says   []string
		state  string
		sentry error
	}{
		{"risk above the limit", strings.Replace(base, "k: 5", "k: 2", 1), dataset.ErrRefused,
			[]string{"prosecutor risk", "above the limit 0.200", "driven by"}, dataset.StateRefused, tabular.ErrRiskTooHigh},
		{"unreachable model", strings.Replace(base, "k: 5", "k: 5000", 1), dataset.ErrRefused,
			[]string{"no generalization reaches k=5000"}, dataset.StateRefused, tabular.ErrUnreachable},
		{"no matching patient", strings.Replace(base, "classes: [encounter]", "classes: [encounter]\n  codes: [Z99.9]", 1), dataset.ErrEmptyCohort,
			[]string{"no patient matches the cohort"}, dataset.StateFailed, nil},
		{"nobody consented to the purpose", strings.Replace(base, "purpose: MLTRAINING", "purpose: HRESCH", 1), dataset.ErrEmptyCohort,
			[]string{"may be used for HRESCH", "first refusal"}, dataset.StateFailed, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.out = filepath.Join(t.TempDir(), "ds")
			_, err := f.create(t, tt.spec, dataset.FormatCSV)
			if !errors.Is(err, tt.want) || (tt.sentry != nil && !errors.Is(err, tt.sentry)) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if exists(f.out) || exists(f.out+".partial") {
				t.Error("a refused job left files behind")
			}
			in := registered(t, f)
			if in.State != tt.state || !strings.Contains(in.Note, tt.says[0]) {
				t.Errorf("register holds %s with %q, want the refusal recorded as %s", in.State, in.Note, tt.state)
			}
			evs := f.EventsWith(t, "dataset.create", audit.Failed)
			if len(evs) != i+1 || !strings.Contains(evs[i].Reason, tt.state) {
				t.Errorf("audit of the refusal: %+v", evs)
			}
		})
	}
	t.Run("output exists", func(t *testing.T) {
		f.out = t.TempDir()
		if _, err := f.create(t, base, dataset.FormatCSV); !errors.Is(err, dataset.ErrExists) {
			t.Errorf("got %v, want ErrExists", err)
		}
	})
}

// registered is the register's entry of the fixture's output directory.
func registered(t *testing.T, f *fixture) dataset.Info {
	t.Helper()
	all, err := f.svc.List(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if in.Location == f.out {
			return in
		}
	}
	t.Fatalf("no dataset of %s in the register", f.out)
	return dataset.Info{}
}

func TestBadSpecs(t *testing.T) {
	base := dataset.SyntheticSpec(5)
	tests := []struct {
		name, from, to, says string
	}{
		{"a quasi-identifier that is not a field", "{column: sex, hierarchy: sex}", "{column: weight, hierarchy: sex}", `"weight"`},
		{"a field with two roles", "  pseudonymize: [patient]", "  pseudonymize: [patient]\n  drop: [sex]", `column "sex" is both`},
		{"a field nobody reviewed", "  keep: [admissions]\n", "", `"admissions" is not named in the spec`},
		{"an unknown source", "from: patient.sex}", "from: patient.blood_type}", `unknown source "patient.blood_type"`},
		{"a direct identifier kept", "  pseudonymize: [patient]\n  keep: [admissions]", "  keep: [admissions, patient]", `direct identifier`},
		{"free text without a role", "free_text:\n  columns: [summary]\n", "", `"summary" is not named in the spec`},
		{"free text of a record not redacted", "from: record.payload.summary}\nfree_text:\n  columns: [summary]\n", "from: record.text}\n", `holds free text`},
		{"a typo in a key", "max_suppression:", "max_supression:", "max_supression"},
		{"an unknown purpose", "purpose: MLTRAINING", "purpose: MARKETING", `"MARKETING"`},
		{"an unknown class", "classes: [encounter]", "classes: [billing]", `"billing"`},
		{"a bad date", "  classes: [encounter]", "  classes: [encounter]\n  from: 2024-13-01", `2024-13-01`},
		{"an impossible l", "  k: 5", "  k: 5\n  l: 1", "l-diversity needs l of at least 2"},
		{"a count with record rows", "rows: patient", "rows: record", "count.encounter counts records per patient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.from) {
				t.Fatalf("the base spec has no %q", tt.from)
			}
			text := strings.Replace(base, tt.from, tt.to, 1)
			_, err := dataset.ParseSpec([]byte(text), nil, ".")
			if !errors.Is(err, dataset.ErrSpec) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("got %v, want ErrSpec saying %q", err, tt.says)
			}
		})
	}
}

// cancelAfter interrupts the job once n patients are done.
type cancelAfter struct {
	dataset.NoProgress
	done, n int64
	cancel  func()
}

func (c *cancelAfter) Add(n int64) {
	if c.done += n; c.done >= c.n {
		c.cancel()
	}
}

// TestResume: an interrupted job keeps its sealed units and journal, and
// the next run reuses the units whose hash still matches, redoes a damaged
// one, screens the cohort only once and makes the same dataset a full run
// would.
func TestResume(t *testing.T) {
	f := newFixture(t, lifecycletest.SQLite, 120)
	s, raw := spec(t, dataset.SyntheticSpec(5))
	ctx, cancel := context.WithCancel(context.Background())
	req := dataset.CreateRequest{Who: f.researcher, Spec: s, SpecYAML: raw, Out: f.out, Format: dataset.FormatCSV, UnitSize: 20,
		Progress: &cancelAfter{n: 40, cancel: cancel}}
	_, err := f.svc.Create(ctx, req)
	if !errors.Is(err, dataset.ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted job: %v, want ErrInterrupted", err)
	}
	if exists(f.out) {
		t.Fatal("an interrupted job wrote the dataset")
	}
	job := f.out + ".partial"
	units := journalUnits(t, job)
	if len(units) != 2 {
		t.Fatalf("journal holds %d units, want the 2 done before the interruption", len(units))
	}
	noPlaintext(t, f, job)
	other := strings.Replace(dataset.SyntheticSpec(5), "k: 5", "k: 6", 1)
	os2, raw2 := spec(t, other)
	if _, err := f.svc.Create(context.Background(), dataset.CreateRequest{Who: f.researcher, Spec: os2, SpecYAML: raw2, Out: f.out, Format: dataset.FormatCSV}); !errors.Is(err, dataset.ErrSpec) {
		t.Errorf("resuming with another spec: %v, want ErrSpec", err)
	}
	if err := os.WriteFile(filepath.Join(job, "unit-000001.sealed"), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	req.Progress = nil
	c, err := f.svc.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("resumed job: %v", err)
	}
	if c.ResumedUnits != 1 {
		t.Errorf("resumed %d units, want 1 (the damaged one redone)", c.ResumedUnits)
	}
	consenting := len(f.consenting())
	if c.Manifest.Cohort.Consented != consenting || c.Manifest.Cohort.RowsBefore != consenting {
		t.Errorf("resumed dataset cohort %+v, want %d consenting patients", c.Manifest.Cohort, consenting)
	}
	screenings := 0
	for _, e := range f.EventsWith(t, "audit.search", audit.Success) {
		if strings.Contains(e.Reason, "research screening for "+"dataset "+c.Info.ID) {
			screenings++
		}
	}
	if screenings != 1 || exists(job) {
		t.Errorf("%d screenings (want 1), job directory left: %v", screenings, exists(job))
	}
	if _, err := f.svc.Verify(context.Background(), c.Dir); err != nil {
		t.Error(err)
	}
}

func journalUnits(t *testing.T, dir string) []any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j struct{ Units []any }
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j.Units
}

// noPlaintext: the job directory holds no patient's name, phone or record
// number (units and cohort are sealed).
func noPlaintext(t *testing.T, f *fixture, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, pt := range f.patients {
			for _, v := range []string{pt.Name, pt.Phone, pt.ID} {
				if strings.Contains(string(b), v) {
					t.Errorf("%s holds %q in plaintext", filepath.Base(p), v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
