package dataset_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/records"
)

// fixture is a real installation (hospital.Init and Open, the shipped
// Cedar policy, the one door, the audit log) with a researcher, the
// life-cycle engine and the dataset service connected to its data map,
// and a synthetic cohort.
type fixture struct {
	*lifecycletest.Stack
	svc        *dataset.Service
	researcher identity.Principal
	patients   []dataset.SyntheticPatient
	out        string // a fresh output directory path (not created)
}

const researcherPassword = "a long researcher password 2026"

func newFixture(t testing.TB, b lifecycletest.Backend, admissions int) *fixture {
	t.Helper()
	ctx := context.Background()
	st := lifecycletest.New(t, b, nil)
	f := &fixture{Stack: st, out: filepath.Join(t.TempDir(), "ds")}
	var err error
	f.svc, err = dataset.New(ctx, dataset.Config{DB: st.DB, Door: st.Door, Keys: st.H.Keys, Audit: st.Audit, Alerts: st.H.Alerts,
		HospitalID: st.H.Config.Hospital.ID, Now: st.Clock.Now, Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st.Engine.AddSource(f.svc)
	if _, err := st.H.Staff.Create(ctx, identity.NewStaff{Username: "researcher.choi", DisplayName: "Researcher Choi",
		Role: identity.RoleResearcher, Department: "research", Password: researcherPassword}); err != nil {
		t.Fatal(err)
	}
	if f.researcher, err = st.H.Staff.Authenticate(ctx, "researcher.choi", researcherPassword, "test"); err != nil {
		t.Fatal(err)
	}
	if admissions > 0 {
		f.patients = cohort(t, st, admissions)
	}
	return f
}

func cohort(t testing.TB, st *lifecycletest.Stack, admissions int) []dataset.SyntheticPatient {
	t.Helper()
	ps, err := dataset.SyntheticCohort(context.Background(), st.Door, st.Clerk, st.Doctor, admissions, 7, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// spec parses a spec text (hierarchy files none).
func spec(t testing.TB, yamlText string) (*dataset.Spec, []byte) {
	t.Helper()
	s, err := dataset.ParseSpec([]byte(yamlText), nil, ".")
	if err != nil {
		t.Fatal(err)
	}
	return s, []byte(yamlText)
}

func (f *fixture) create(t *testing.T, yamlText, format string) (*dataset.Created, error) {
	t.Helper()
	s, raw := spec(t, yamlText)
	return f.svc.Create(context.Background(), dataset.CreateRequest{Who: f.researcher, Spec: s, SpecYAML: raw, Out: f.out, Format: format, UnitSize: 25})
}

func (f *fixture) mustCreate(t *testing.T, yamlText, format string) *dataset.Created {
	t.Helper()
	c, err := f.create(t, yamlText, format)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) officer() records.Request {
	return records.Request{Who: f.Officer, Purpose: "HOPERAT"}
}

func (f *fixture) consenting() []dataset.SyntheticPatient {
	var out []dataset.SyntheticPatient
	for _, p := range f.patients {
		if p.Consent != "" {
			out = append(out, p)
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
