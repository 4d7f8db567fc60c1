package dataset_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/records"
)

// TestCreate: a dataset holds exactly the consenting patients, meets k and
// the risk limit, carries no identifying value of any patient, verifies
// with the hospital's key, and every read that made it was decided for the
// researcher, flagged deidentified-only and audited.
func TestCreate(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		f := newFixture(t, b, 160)
		c := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatParquet)
		m := c.Manifest
		consenting := f.consenting()
		want := dataset.CohortCounts{Candidates: len(f.patients), Consented: len(consenting), Excluded: len(f.patients) - len(consenting),
			RowsBefore: len(consenting), Suppressed: m.Cohort.Suppressed, Rows: len(consenting) - m.Cohort.Suppressed, Patients: len(consenting) - m.Cohort.Suppressed}
		if diff := cmp.Diff(want, m.Cohort); diff != "" {
			t.Errorf("cohort counts (-want +got):\n%s", diff)
		}
		if m.Privacy.Reached.K < 5 || m.Privacy.PatientsPerClassMin < 5 || m.Risk.ProsecutorMax > 0.2 || m.Risk.Limit != 0.2 {
			t.Errorf("privacy %+v, risk %+v: want k ≥ 5 per row and per patient, risk ≤ 0.2", m.Privacy.Reached, m.Risk)
		}
		if !slices.Contains(m.Policy.Decided, "research-with-consent") || !slices.Contains(m.Policy.Flags, "deidentified-only") || len(m.Policy.SHA256) != 64 {
			t.Errorf("policy %+v", m.Policy)
		}
		tab := readData(t, c.Dir, m)
		if len(tab.Rows) != m.Cohort.Rows || !slices.Equal(sorted(tab.Columns), sorted(m.Dataset.Columns)) {
			t.Errorf("data file has %d rows, columns %v; manifest says %d, %v", len(tab.Rows), tab.Columns, m.Cohort.Rows, m.Dataset.Columns)
		}
		noPHI(t, f, c.Dir)
		if _, err := f.svc.Verify(context.Background(), c.Dir); err != nil {
			t.Errorf("fresh dataset does not verify: %v", err)
		}
		if exists(c.Dir + ".partial") {
			t.Error("the job directory is left behind")
		}
		checkAudit(t, f, c, len(consenting))
	})
}

func readData(t *testing.T, dir string, m *dataset.Manifest) *tabular.Table {
	t.Helper()
	name := "data.csv"
	if m != nil {
		name = m.Files[0].Name
	}
	tab, err := dataset.ReadTableFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// noPHI searches every file of the dataset for the patients' phone
// numbers and record numbers, and each row for its own patient's name.
func noPHI(t *testing.T, f *fixture, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for _, p := range f.patients {
		for _, v := range []string{p.Phone, p.ID, p.Pseudonym} {
			if bytes.Contains(all, []byte(v)) {
				t.Errorf("the dataset holds %q of a patient", v)
			}
		}
	}
	if bytes.Contains(all, []byte("MRN-P")) {
		t.Error("the dataset holds a medical record number")
	}
}

// checkAudit: one screening, two decided reads per member, one
// dataset.create event.
func checkAudit(t *testing.T, f *fixture, c *dataset.Created, members int) {
	t.Helper()
	var screenings, reads, creates int
	for _, e := range f.Events(t) {
		switch {
		case e.Action == "audit.search" && strings.Contains(e.Reason, "research screening for dataset "+c.Info.ID):
			screenings++
		case (e.Action == "demographics.read" || e.Action == "encounter.read") && e.Actor == f.researcher.ID:
			reads++
			if e.Purpose != "MLTRAINING" || !slices.Contains(e.Flags, "deidentified-only") || !strings.Contains(e.Reason, c.Info.ID) {
				t.Errorf("research read event %+v", e)
			}
		case e.Action == "dataset.create" && e.Outcome == audit.Success:
			creates++
		}
	}
	if screenings != 1 || reads != 2*members || creates != 1 {
		t.Errorf("audit: %d screenings, %d reads, %d creations; want 1, %d, 1", screenings, reads, creates, 2*members)
	}
}

// TestRowsPerRecord: with a row per admission, k and the risk limit still
// hold per patient (patient_level_test.go checks the suppression that
// makes them).
func TestRowsPerRecord(t *testing.T) {
	f := newFixture(t, lifecycletest.SQLite, 160)
	spec := strings.Replace(strings.Replace(dataset.SyntheticSpec(3), "rows: patient", "rows: record", 1), "max_suppression: 0.05", "max_suppression: 0.4", 1)
	spec = strings.Replace(spec, "  - {name: admissions, from: count.encounter}\n", "", 1)
	spec = strings.Replace(spec, "  keep: [admissions]\n", "", 1)
	spec = strings.Replace(spec, "k: 3", "k: 3\n  max_risk: 0.34", 1)
	c := f.mustCreate(t, spec, dataset.FormatNDJSON)
	m := c.Manifest
	if m.Privacy.PatientsPerClassMin < 3 || m.Risk.PatientMax > 0.34 {
		t.Errorf("per-patient classes: at least %d patients, risk %.3f; want ≥ 3, ≤ 0.34", m.Privacy.PatientsPerClassMin, m.Risk.PatientMax)
	}
	if m.Cohort.Rows <= m.Cohort.Patients {
		t.Errorf("%d rows of %d patients: want several admissions per patient", m.Cohort.Rows, m.Cohort.Patients)
	}
}

// TestStale: a member who withdraws consent, or is erased, makes the
// dataset stale; non-members do not; the data map shows it.
func TestStale(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b, 120)
		c := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV)
		if st, err := f.svc.List(ctx, true); err != nil || len(st) != 0 {
			t.Fatalf("fresh dataset listed as stale: %v %v", st, err)
		}
		members := f.members(t, c)
		withdrawer, erased := members[0], members[1]
		admin := records.Request{Who: f.Clerk, Purpose: "HOPERAT"}
		if _, err := f.Door.WithdrawConsent(ctx, admin, withdrawer.Consent, "no longer wants to take part"); err != nil {
			t.Fatal(err)
		}
		if err := f.Door.DestroyPatient(ctx, f.officer(), erased.ID, "REQUEST erasure 2026-7"); err != nil {
			t.Fatal(err)
		}
		st, err := f.svc.List(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 1 || st[0].ID != c.Info.ID {
			t.Fatalf("stale datasets %+v, want %s", st, c.Info.ID)
		}
		got := map[string]string{}
		for _, m := range st[0].Stale {
			got[m.Patient] = m.Reason
			if m.Since.IsZero() {
				t.Errorf("stale member %+v has no date", m)
			}
		}
		want := map[string]string{withdrawer.Pseudonym: "consent withdrawn", erased.Pseudonym: "erased"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stale members (-want +got):\n%s", diff)
		}
		traceShowsDataset(t, f, withdrawer, c.Info.ID)
	})
}

// members are the first three patients of the dataset (by the officer's
// re-identification of its first rows).
func (f *fixture) members(t *testing.T, c *dataset.Created) []dataset.SyntheticPatient {
	t.Helper()
	byID := map[string]dataset.SyntheticPatient{}
	for _, p := range f.patients {
		byID[p.ID] = p
	}
	var out []dataset.SyntheticPatient
	for row := 0; row < c.Manifest.Cohort.Rows && len(out) < 3; row++ {
		r, err := f.svc.Reidentify(context.Background(), f.officer(), c.Info.ID, dataset.Target{Row: row, ByRow: true}, "test of staleness")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, byID[r.PatientID])
	}
	return out
}

func traceShowsDataset(t *testing.T, f *fixture, p dataset.SyntheticPatient, id string) {
	t.Helper()
	m, err := f.Engine.Trace(context.Background(), f.officer(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var found *lifecycle.Location
	for i, l := range m.Locations {
		if l.Kind == lifecycle.KindDataset {
			found = &m.Locations[i]
		}
	}
	if found == nil || !strings.Contains(found.Place, id) || !strings.Contains(found.State, "STALE (consent withdrawn)") || found.Count != 1 {
		t.Errorf("data map of a withdrawn member: %+v, want the dataset %s marked stale", found, id)
	}
	for _, h := range m.Hooks {
		if h.Kind == lifecycle.KindDataset && !h.Connected {
			t.Error("the data map says the dataset hook is not connected")
		}
	}
}

// TestEraseAlertsTheTeam: an erasure tells the register, which raises an
// alert per dataset with the patient and reports it as a copy outside.
func TestEraseAlertsTheTeam(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifecycletest.SQLite, 80)
	c := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV)
	p := f.members(t, c)[0]
	locs, err := f.svc.Erase(ctx, lifecycle.Subject{PatientID: p.ID, Pseudonym: p.Pseudonym}, "REQUEST erasure 2026-9")
	if err != nil {
		t.Fatal(err)
	}
	if len(locs) != 1 || !strings.Contains(locs[0].State, "rebuild") {
		t.Errorf("erasure locations %+v", locs)
	}
	as, err := f.H.Alerts.List(ctx, alerts.Filter{Kind: dataset.AlertStale})
	if err != nil || len(as) != 1 || as[0].Subject != c.Info.ID || as[0].Patient != p.Pseudonym {
		t.Errorf("alerts %+v, %v: want one for %s naming %s", as, err, c.Info.ID, p.Pseudonym)
	}
}

// TestLineageRoundTrip: the officer re-identifies a row by its position and
// by its pseudonym to the same patient and their source records; the
// researcher may not, and an erased patient's lineage is gone.
func TestLineageRoundTrip(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b, 80)
		c := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV)
		tab := readData(t, c.Dir, c.Manifest)
		pcol := slices.Index(tab.Columns, "patient")
		for _, row := range []int{0, len(tab.Rows) / 2, len(tab.Rows) - 1} {
			byRow, err := f.svc.Reidentify(ctx, f.officer(), c.Info.ID, dataset.Target{Row: row, ByRow: true}, "audit 12")
			if err != nil {
				t.Fatal(err)
			}
			byPseudonym, err := f.svc.Reidentify(ctx, f.officer(), c.Info.ID, dataset.Target{Pseudonym: tab.Rows[row][pcol]}, "audit 12")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(byRow, byPseudonym); diff != "" {
				t.Errorf("row %d by position and by pseudonym differ (-row +pseudonym):\n%s", row, diff)
			}
			if !slices.Contains(byRow.Rows, row) {
				t.Errorf("row %d re-identified to rows %v", row, byRow.Rows)
			}
			want := f.encounterIDs(t, byRow.PatientID)
			if diff := cmp.Diff(want, sorted(byRow.Records)); diff != "" {
				t.Errorf("row %d: source records (-the patient's encounters +lineage):\n%s", row, diff)
			}
		}
		refused(t, f, c)
		victim, err := f.svc.Reidentify(ctx, f.officer(), c.Info.ID, dataset.Target{Row: 0, ByRow: true}, "before erasure")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Door.DestroyPatient(ctx, f.officer(), victim.PatientID, "REQUEST erasure"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Reidentify(ctx, f.officer(), c.Info.ID, dataset.Target{Row: 0, ByRow: true}, "after erasure"); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("lineage of an erased patient: %v, want ErrDestroyed", err)
		}
	})
}

func refused(t *testing.T, f *fixture, c *dataset.Created) {
	t.Helper()
	ctx := context.Background()
	_, err := f.svc.Reidentify(ctx, records.Request{Who: f.researcher, Purpose: "MLTRAINING"}, c.Info.ID, dataset.Target{Row: 0, ByRow: true}, "curious")
	if !errors.Is(err, dataset.ErrDenied) {
		t.Errorf("researcher re-identified a row: %v", err)
	}
	denied := false
	for _, e := range f.Events(t) {
		denied = denied || (e.Action == "dataset.reidentify" && e.Outcome == audit.Denied && e.Actor == f.researcher.ID)
	}
	if !denied {
		t.Error("the refused re-identification is not in the audit log")
	}
	if _, err := f.svc.Reidentify(ctx, f.officer(), c.Info.ID, dataset.Target{Pseudonym: "notapseudonym"}, "typo"); !errors.Is(err, dataset.ErrNotFound) {
		t.Errorf("unknown pseudonym: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.Reidentify(ctx, f.officer(), c.Info.ID, dataset.Target{Row: 1 << 20, ByRow: true}, "typo"); !errors.Is(err, dataset.ErrNotFound) {
		t.Errorf("row past the end: %v, want ErrNotFound", err)
	}
}

func (f *fixture) encounterIDs(t *testing.T, patientID string) []string {
	t.Helper()
	recs, err := f.Door.Records(context.Background(), records.Request{Who: f.Doctor, Purpose: "TREAT"}, patientID, records.Filter{Class: records.ClassEncounter})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return sorted(ids)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestSecondDatasetUnlinkable: the same patients get other pseudonyms in
// another dataset (a fresh secret per dataset).
func TestSecondDatasetUnlinkable(t *testing.T) {
	f := newFixture(t, lifecycletest.SQLite, 80)
	one := readData(t, f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV).Dir, nil)
	f.out = filepath.Join(t.TempDir(), "two")
	two := readData(t, f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV).Dir, nil)
	seen := map[string]bool{}
	for _, r := range one.Rows {
		seen[r[0]] = true
	}
	for _, r := range two.Rows {
		if seen[r[0]] {
			t.Fatalf("pseudonym %s appears in both datasets", r[0])
		}
	}
}

// TestLinkedDatasetSharesPseudonyms: a spec that says link_with gets the
// earlier dataset's pseudonyms (a follow-up extract joins the first), says
// so in its manifest, and is refused for a dataset that does not exist or
// was made for another purpose.
func TestLinkedDatasetSharesPseudonyms(t *testing.T) {
	f := newFixture(t, lifecycletest.SQLite, 80)
	first := f.mustCreate(t, dataset.SyntheticSpec(5), dataset.FormatCSV)
	one := readData(t, first.Dir, nil)
	f.out = filepath.Join(t.TempDir(), "two")
	linked := f.mustCreate(t, dataset.SyntheticSpec(5)+"link_with: "+first.Info.ID+"\n", dataset.FormatCSV)
	two := readData(t, linked.Dir, nil)
	seen := map[string]bool{}
	for _, r := range one.Rows {
		seen[r[0]] = true
	}
	shared := 0
	for _, r := range two.Rows {
		if seen[r[0]] {
			shared++
		}
	}
	if shared == 0 || shared < len(two.Rows)*9/10 {
		t.Errorf("%d of %d pseudonyms of the linked dataset appear in the first; want (nearly) all", shared, len(two.Rows))
	}
	if linked.Manifest.Dataset.LinkedWith != first.Info.ID {
		t.Errorf("manifest linked_with = %q, want %s", linked.Manifest.Dataset.LinkedWith, first.Info.ID)
	}

	f.out = filepath.Join(t.TempDir(), "three")
	if _, err := f.create(t, dataset.SyntheticSpec(5)+"link_with: ds_nosuchdataset\n", dataset.FormatCSV); !errors.Is(err, dataset.ErrNotFound) {
		t.Errorf("link_with an unknown dataset: %v, want ErrNotFound", err)
	}
	other := strings.Replace(dataset.SyntheticSpec(5), "purpose: MLTRAINING", "purpose: HRESCH", 1) + "link_with: " + first.Info.ID + "\n"
	f.out = filepath.Join(t.TempDir(), "four")
	if _, err := f.create(t, other, dataset.FormatCSV); !errors.Is(err, dataset.ErrSpec) || !strings.Contains(err.Error(), "never linked") {
		t.Errorf("link_with a dataset of another purpose: %v, want a spec error", err)
	}
}
