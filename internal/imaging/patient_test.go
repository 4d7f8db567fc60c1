package imaging_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
)

// TestQuarantineReadsNeedOfficer: listing and showing the quarantine is a
// read of files that may be a patient's study; only a security officer
// with a second factor may, and every read or refusal is audited.
func TestQuarantineReadsNeedOfficer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	_, ids := importCD(t, f)
	poly := ids["DICOM/POLY/IM0001"]
	noMFA, err := f.h.Staff.Authenticate(ctx, "officer.han", f.password, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		who  identity.Principal
	}{
		{"nobody signed in", identity.Principal{}},
		{"the attending physician", f.doctor},
		{"an officer without a second factor", noMFA},
		{"the import job", identity.System("import")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.in.Quarantined(ctx, tt.who, imaging.Filter{}); !errors.Is(err, imaging.ErrNotOfficer) {
				t.Errorf("list: got %v, want ErrNotOfficer", err)
			}
			if ev := f.lastEvent(t); ev.Action != "quarantine.list" || ev.Outcome != audit.Denied || ev.Actor != actorName(tt.who) {
				t.Errorf("list refusal audited as %+v", ev)
			}
			if _, err := f.in.QuarantineItem(ctx, tt.who, poly); !errors.Is(err, imaging.ErrNotOfficer) {
				t.Errorf("show: got %v, want ErrNotOfficer", err)
			}
			if ev := f.lastEvent(t); ev.Action != "quarantine.read" || ev.Outcome != audit.Denied || ev.Resource != "Quarantine/"+poly {
				t.Errorf("show refusal audited as %+v", ev)
			}
		})
	}
	items, err := f.in.Quarantined(ctx, f.officer, imaging.Filter{})
	if err != nil || len(items) != 3 {
		t.Fatalf("officer's list: %d items, %v", len(items), err)
	}
	if ev := f.lastEvent(t); ev.Action != "quarantine.list" || ev.Outcome != audit.Success || ev.Actor != f.officer.ID {
		t.Errorf("list audited as %+v", ev)
	}
	it, err := f.in.QuarantineItem(ctx, f.officer, poly)
	if err != nil || !strings.HasSuffix(it.Name, "POLY/IM0001") {
		t.Fatalf("officer's show: %+v, %v", it, err)
	}
	if ev := f.lastEvent(t); ev.Action != "quarantine.read" || ev.Outcome != audit.Success || ev.Patient != f.patient.Pseudonym {
		t.Errorf("show audited as %+v, want the patient's pseudonym", ev)
	}
}

func actorName(p identity.Principal) string {
	if p.ID == "" {
		return "anonymous"
	}
	return p.ID
}

// lifecycleEngine connects the intake to a lifecycle engine whose only
// rule lets erasure happen now.
func lifecycleEngine(t *testing.T, f *fixture) *lifecycle.Engine {
	t.Helper()
	s, err := lifecycle.ParseSchedule([]byte("name: test\nrules:\n  - class: demographics\n    keep: 1y\n    basis: the test hospital's own rule\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := lifecycle.New(context.Background(), lifecycle.Config{DB: f.h.DB, Door: f.h.Door, Audit: f.h.Audit, Keys: f.h.Keys,
		HospitalID: f.h.Config.Hospital.ID, Schedule: s})
	if err != nil {
		t.Fatal(err)
	}
	e.AddSource(f.in)
	return e
}

// TestErasureReachesQuarantine: a file held for a patient registered only
// after the import is matched to them, listed in their data map, and
// destroyed by their erasure, with a copy the officer took listed as
// outside.
func TestErasureReachesQuarantine(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	_, ids := importCD(t, f)
	stranger := ids["DICOM/OTHER/IM0001"]
	engine := lifecycleEngine(t, f)

	late := f.register(t, "MRN-999999", "이서연")
	trace := func() lifecycle.DataMap {
		t.Helper()
		m, err := engine.Trace(ctx, records.Request{Who: f.officer, Purpose: "HOPERAT"}, late.ID)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := trace()
	held := imagingLocations(m)
	if len(held) != 1 || held[0].Count != 1 || held[0].Stage != lifecycle.StageCollection {
		t.Fatalf("data map %+v, want the held file of the late-registered patient", m.Locations)
	}
	if !slices.ContainsFunc(m.Hooks, func(h lifecycle.Hook) bool { return h.Kind == lifecycle.KindImaging && h.Connected }) {
		t.Errorf("hooks %+v, want imaging connected", m.Hooks)
	}
	if ev := f.findEvent(t, func(e audit.Event) bool { return e.Action == "quarantine.match" }); ev.Patient != late.Pseudonym || ev.Resource != "Quarantine/"+stranger {
		t.Errorf("match event %+v, want the item and the pseudonym", ev)
	}
	// The officer takes a copy for forensics: it will be outside.
	var copied strings.Builder
	if _, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "copy for the vendor", Out: &copied}, stranger); err != nil {
		t.Fatal(err)
	}

	er, err := engine.Erase(ctx, lifecycle.PatientRequest{PatientID: late.ID, Reference: "2026-0042", Received: f.clerk.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(er.Outside) != 1 || er.Outside[0].Holder != f.officer.ID {
		t.Errorf("outside copies %+v, want the officer's copy", er.Outside)
	}
	checkShredded(t, f, stranger)
	ev := f.findEvent(t, func(e audit.Event) bool { return e.Action == "quarantine.erase" })
	if ev.Patient != late.Pseudonym || !strings.Contains(ev.Reason, "2026-0042") {
		t.Errorf("erase event %+v, want the pseudonym and the request", ev)
	}
	it, err := f.in.QuarantineItem(ctx, f.officer, stranger)
	if err != nil || it.State != imaging.StateDeleted || !it.Destroyed || it.Name != "" {
		t.Errorf("item after erasure: %+v, %v; want it destroyed", it, err)
	}
	// The others are untouched.
	if it, err := f.in.QuarantineItem(ctx, f.officer, ids["AUTORUN.INF"]); err != nil || it.State != imaging.StateHeld || it.Name == "" {
		t.Errorf("another item after the erasure: %+v, %v", it, err)
	}
}

func imagingLocations(m lifecycle.DataMap) []lifecycle.Location {
	var out []lifecycle.Location
	for _, l := range m.Locations {
		if l.Kind == lifecycle.KindImaging {
			out = append(out, l)
		}
	}
	return out
}

// TestShreddingFollows: a patient crypto-shredded without the engine (the
// door's own destruction, as the retention run does it) loses their
// quarantined files at the next tidy.
func TestShreddingFollows(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	_, ids := importCD(t, f)
	poly := ids["DICOM/POLY/IM0001"]
	err := f.h.Door.DestroyPatient(ctx, records.Request{Who: f.officer, Purpose: "HOPERAT"}, f.patient.ID, "REQUEST 2026-0007")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.in.Tidy(ctx); err != nil {
		t.Fatal(err)
	}
	checkShredded(t, f, poly)
	if ev := f.findEvent(t, func(e audit.Event) bool { return e.Action == "quarantine.erase" }); ev.Patient != f.patient.Pseudonym || !strings.Contains(ev.Reason, "2026-0007") {
		t.Errorf("erase event %+v", ev)
	}
}

// TestOriginNeverInPlaintext: what the operator typed about the media
// (here a patient's name and number) is found in no table, audit event or
// alert in the clear; the officer reads it back from the sealed import.
func TestOriginNeverInPlaintext(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	const origin = "CD of 홍길동 (MRN 5554321) from Daejeon clinic"
	root := writeFiles(t, map[string][]byte{
		"DICOM/IM1":   study(t, 61, testMRN, 1, 1, nil)[0].Data,
		"DICOM/POLY1": study(t, 62, testMRN, 1, 1, peHeader())[0].Data,
	})
	rep, err := f.in.Import(ctx, imaging.Request{Paths: []string{root}, Origin: origin, Media: "CD"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stored != 1 || rep.Quarantined != 1 || rep.Origin != origin || rep.Media != "cd" {
		t.Fatalf("report %+v", rep)
	}
	needles := []string{origin, "홍길동", "5554321", "Daejeon"}
	err = audit.Scan(ctx, f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		for _, n := range needles {
			if strings.Contains(e.Reason+e.Source+e.Resource, n) {
				t.Errorf("audit event %d holds %q: %+v", e.Index, n, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	open, err := f.h.Alerts.List(ctx, alerts.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range open {
		for _, n := range needles {
			if strings.Contains(a.Summary+a.Detail+a.Subject, n) {
				t.Errorf("alert holds %q: %+v", n, a)
			}
		}
	}
	// The database, its write-ahead log and every other file of the
	// installation.
	err = filepath.WalkDir(f.h.Config.Path("."), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if strings.Contains(string(raw), n) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(path), n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOriginReadBack: the officer's list shows the origin as typed, opened
// from the import's sealed row.
func TestOriginReadBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	root := writeFiles(t, map[string][]byte{"DICOM/POLY1": study(t, 63, testMRN, 1, 1, peHeader())[0].Data})
	if _, err := f.in.Import(ctx, imaging.Request{Paths: []string{root}, Origin: "USB stick from Daejeon clinic", Media: "usb"}); err != nil {
		t.Fatal(err)
	}
	items, err := f.in.Quarantined(ctx, f.officer, imaging.Filter{})
	if err != nil || len(items) != 1 || items[0].Origin != "USB stick from Daejeon clinic" {
		t.Errorf("items %+v, %v; want the origin read back", items, err)
	}
}

// TestDoorRefusesIdentifyingSource: the imaging door takes a label as an
// instance's source, never words that may name someone.
func TestDoorRefusesIdentifyingSource(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	ins := study(t, 71, testMRN, 1, 4, nil)
	for i, tt := range []struct {
		source string
		want   error
	}{
		{"CD of 김민수", records.ErrInvalid},
		{"CD for MRN 1000001", records.ErrInvalid},
		{"patient 900101-1234567", records.ErrInvalid},
		{"cd import imp_0123456789abcdef0123", nil},
	} {
		t.Run(tt.source, func(t *testing.T) {
			in := records.ImagingInstance{StudyUID: ins[i].StudyInstanceUID, SeriesUID: ins[i].SeriesInstanceUID, InstanceUID: ins[i].SOPInstanceUID,
				SHA256: strings.Repeat("ab", 32), Data: ins[i].Data, Source: tt.source}
			_, err := f.h.Door.StoreImaging(ctx, records.Request{Who: identity.System("import"), Purpose: "TREAT"}, testMRN, in)
			if !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}
