package imaging_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/medsec/medsec/internal/records"
)

// peHeader is a benign PE-shaped preamble ("MZ", e_lfanew -> "PE\0\0"):
// it runs nothing, it only has the shape of CVE-2019-11687 polyglots.
func peHeader() []byte {
	b := make([]byte, 128)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	return b
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fw, err := w.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(files[n])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// cdTree is import media as a referring clinic burns it: a study of the
// registered patient, a polyglot of the same patient, a study of a patient
// this hospital does not know, an autorun file, a viewer's readme, and a
// zip with one more image of the study.
type cdTree struct {
	root     string
	study    []dicomtest.Instance
	polyglot dicomtest.Instance
	stranger dicomtest.Instance
	zipped   dicomtest.Instance
}

func newCD(t *testing.T) cdTree {
	t.Helper()
	st := study(t, 11, testMRN, 2, 2, nil)
	extra := study(t, 11, testMRN, 2, 3, nil) // same seed: the same study, one more instance per series
	cd := cdTree{study: st, zipped: extra[len(extra)-1],
		polyglot: study(t, 12, testMRN, 1, 1, peHeader())[0], stranger: study(t, 13, "MRN-999999", 1, 1, nil)[0]}
	files := map[string][]byte{
		"AUTORUN.INF":           []byte("[autorun]\nopen=viewer.exe\n"),
		"README.TXT":            []byte("Open the study with the viewer on this disc.\n"),
		"DICOM/POLY/IM0001":     cd.polyglot.Data,
		"DICOM/OTHER/IM0001":    cd.stranger.Data,
		"EXTRA/MORE.ZIP":        zipOf(t, map[string][]byte{"IM0099.dcm": cd.zipped.Data}),
		"DICOM/ST01/SE00/IM001": st[0].Data, "DICOM/ST01/SE00/IM002": st[1].Data,
		"DICOM/ST01/SE01/IM001": st[2].Data, "DICOM/ST01/SE01/IM002": st[3].Data,
	}
	cd.root = writeFiles(t, files)
	return cd
}

type outcome struct{ Path, Outcome string }

func outcomes(rep *imaging.Report, root string) []outcome {
	var out []outcome
	for _, f := range rep.Files {
		out = append(out, outcome{strings.TrimPrefix(filepath.ToSlash(f.Path), filepath.ToSlash(root)+"/"), f.Outcome})
	}
	return out
}

func TestImportCD(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	cd := newCD(t)
	rep, err := f.in.Import(ctx, imaging.Request{Paths: []string{cd.root}, Origin: "CD from Busan clinic, MRI 2024-05-01", Operator: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	want := []outcome{
		{"AUTORUN.INF", imaging.Quarantined},
		{"DICOM/OTHER/IM0001", imaging.Quarantined},
		{"DICOM/POLY/IM0001", imaging.Quarantined},
		{"DICOM/ST01/SE00/IM001", imaging.Stored}, {"DICOM/ST01/SE00/IM002", imaging.Stored},
		{"DICOM/ST01/SE01/IM001", imaging.Stored}, {"DICOM/ST01/SE01/IM002", imaging.Stored},
		{"EXTRA/MORE.ZIP", imaging.Skipped}, {"EXTRA/MORE.ZIP!/IM0099.dcm", imaging.Stored},
		{"README.TXT", imaging.Skipped},
	}
	if diff := cmp.Diff(want, outcomes(rep, cd.root)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if rep.Stored != 5 || rep.Quarantined != 3 || rep.Skipped != 2 || rep.Studies != 1 {
		t.Errorf("report counts: stored %d, quarantined %d, skipped %d, studies %d; want 5, 3, 2, 1", rep.Stored, rep.Quarantined, rep.Skipped, rep.Studies)
	}
	for _, o := range rep.Files {
		switch {
		case strings.HasSuffix(o.Path, "POLY/IM0001") && !strings.Contains(o.Reason, "CVE-2019-11687"):
			t.Errorf("the polyglot's reason %q does not say why", o.Reason)
		case strings.HasSuffix(o.Path, "OTHER/IM0001") && !strings.Contains(o.Reason, "no registered patient"):
			t.Errorf("the unknown patient's reason %q does not say why", o.Reason)
		case o.Outcome == imaging.Stored && (o.Patient != f.patient.Pseudonym || o.Instance == ""):
			t.Errorf("%s stored as %q for %q, want an instance of %s", o.Path, o.Instance, o.Patient, f.patient.Pseudonym)
		}
	}
	checkStoredStudy(t, f, cd, rep)
	checkQuarantine(t, f, rep)
	checkImportAudit(t, f, rep)
}

// checkStoredStudy reads the study back as the attending physician: every
// file as it came, preamble zeroed.
func checkStoredStudy(t *testing.T, f *fixture, cd cdTree, rep *imaging.Report) {
	t.Helper()
	got, err := f.h.Door.ImagingStudy(context.Background(), f.treat(f.doctor), cd.study[0].StudyInstanceUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("study has %d instances, want 5", len(got))
	}
	sent := map[string][]byte{cd.zipped.SOPInstanceUID: cd.zipped.Data}
	for _, s := range cd.study {
		sent[s.SOPInstanceUID] = s.Data
	}
	for _, g := range got {
		orig, ok := sent[g.InstanceUID]
		if !ok {
			t.Errorf("instance %s was not sent", g.InstanceUID)
			continue
		}
		if !bytes.Equal(g.Data[128:], orig[128:]) || !bytes.Equal(g.Data[:128], make([]byte, 128)) {
			t.Errorf("instance %s: stored file differs from the one sent (beyond the zeroed preamble)", g.InstanceUID)
		}
		if g.Modality == "" || g.SeriesUID == "" || g.Source != "folder import "+rep.ID || g.Effective.Year() < 2015 {
			t.Errorf("instance %s: metadata %+v", g.InstanceUID, g)
		}
	}
	if _, err := f.h.Door.ImagingStudy(context.Background(), f.treat(f.nurse), cd.study[0].StudyInstanceUID); !errors.Is(err, records.ErrDenied) {
		t.Errorf("a nurse outside the care team read the study: %v", err)
	}
}

func checkQuarantine(t *testing.T, f *fixture, rep *imaging.Report) {
	t.Helper()
	items, err := f.in.Quarantined(context.Background(), f.officer, imaging.Filter{State: imaging.StateHeld})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != rep.Quarantined {
		t.Fatalf("%d items held, the report says %d", len(items), rep.Quarantined)
	}
	for _, it := range items {
		if !it.Kept || it.Origin != rep.Origin || len(it.Findings) == 0 || it.ImportID != rep.ID {
			t.Errorf("item %+v: want the content kept, the origin, the findings and the import", it)
		}
		// The polyglot carries the registered patient's MRN: the item
		// names the patient by pseudonym. The stranger's MRN is no one's.
		wantPatient := ""
		if strings.HasSuffix(it.Name, "POLY/IM0001") {
			wantPatient = f.patient.Pseudonym
			if it.Severity != guard.Critical || !slices.Contains(it.Detectors, guard.DetectDICOMPreamble) {
				t.Errorf("polyglot item: severity %s detectors %v", it.Severity, it.Detectors)
			}
		}
		if it.Patient != wantPatient {
			t.Errorf("item %s: patient %q, want %q", it.Name, it.Patient, wantPatient)
		}
	}
	open, err := f.h.Alerts.List(context.Background(), alerts.Filter{OpenOnly: true, Kind: alerts.KindQuarantine})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != rep.Quarantined {
		t.Errorf("%d quarantine alerts, want one per item (%d)", len(open), rep.Quarantined)
	}
	for _, a := range open {
		if strings.Contains(a.Summary+a.Detail, "POLY") || strings.Contains(a.Summary+a.Detail, testMRN) || strings.Contains(a.Summary+a.Detail, rep.Origin) {
			t.Errorf("alert names the file, the patient or the origin as typed: %+v", a)
		}
		if !strings.Contains(a.Summary, rep.ID) || (a.Patient != "" && a.Patient != f.patient.Pseudonym) {
			t.Errorf("alert %+v: want the import id and at most the patient's pseudonym", a)
		}
	}
}

func checkImportAudit(t *testing.T, f *fixture, rep *imaging.Report) {
	t.Helper()
	var writes, matches, holds, imports int
	err := audit.Scan(context.Background(), f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		if strings.Contains(e.Reason+e.Resource+e.Source, "Busan") {
			t.Errorf("event names the origin as typed: %+v", e)
		}
		switch {
		case e.Action == "imaging.write" && strings.Contains(e.Reason, "matching its patient"):
			matches++ // the officer's list asked again for the unknown MRN
		case e.Action == "imaging.write":
			writes++
			if !strings.Contains(e.Reason, rep.ID) {
				t.Errorf("store event without the import: %+v", e)
			}
		case e.Action == "quarantine.hold":
			holds++
			if !strings.Contains(e.Reason, "folder import "+rep.ID) {
				t.Errorf("hold event without the import: %+v", e)
			}
		case e.Action == "imaging.import":
			imports++
			if e.Actor != "cli:test" || !strings.Contains(e.Reason, "folder media") || !strings.Contains(e.Reason, "5 stored") {
				t.Errorf("import event %+v", e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failed write is audited too: the unknown patient's file, at the
	// import and again when the officer's list looked for its patient.
	if writes != 6 || matches != 1 || holds != 3 || imports != 1 {
		t.Errorf("audited %d imaging writes, %d matches, %d holds, %d imports; want 6, 1, 3, 1", writes, matches, holds, imports)
	}
}

func TestImportAgainFindsDuplicates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	ins := study(t, 21, testMRN, 1, 2, nil)
	root := writeFiles(t, map[string][]byte{"DICOM/IM1": ins[0].Data, "DICOM/IM2": ins[1].Data})
	req := imaging.Request{Paths: []string{root}, Origin: "USB stick from radiology"}
	if _, err := f.in.Import(ctx, req); err != nil {
		t.Fatal(err)
	}
	rep, err := f.in.Import(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stored != 0 || rep.Duplicates != 2 || rep.Studies != 1 {
		t.Errorf("second import: stored %d, duplicates %d; want 0 and 2", rep.Stored, rep.Duplicates)
	}
	// The same UID with other content is a conflict, kept out.
	changed := bytes.Clone(ins[0].Data)
	changed[len(changed)-1] ^= 0xff
	root2 := writeFiles(t, map[string][]byte{"DICOM/IM1": changed})
	rep, err = f.in.Import(ctx, imaging.Request{Paths: []string{root2}, Origin: "USB stick from radiology, second copy"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Quarantined != 1 || !strings.Contains(rep.Files[0].Reason, "other content") {
		t.Errorf("conflicting instance: %+v", rep.Files)
	}
}

func TestImportBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	good := study(t, 31, testMRN, 1, 1, nil)[0].Data
	huge := bytes.Clone(good)
	binary.LittleEndian.PutUint32(huge[len(huge)-8*8*2-4:], 0xFFFFFFF0) // pixel data (last, 8×8×16 bit) declares 4 GB
	root := writeFiles(t, map[string][]byte{
		"DICOM/TRUNC":   good[:len(good)/2],
		"DICOM/SHORT":   good[:100],
		"DICOM/HUGE":    huge,
		"DICOM/GOOD":    good,
		"setup.exe":     append([]byte("MZ"), make([]byte, 200)...),
		"notes.pdf.lnk": append([]byte("L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"), make([]byte, 60)...),
	})
	os.Symlink("loop", filepath.Join(root, "loop"))
	rep, err := f.in.Import(ctx, imaging.Request{Paths: []string{root, filepath.Join(root, "missing")}, Origin: "DVD of unknown provenance"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range outcomes(rep, root) {
		got[o.Path] = o.Outcome
	}
	want := map[string]string{
		"DICOM/TRUNC": imaging.Quarantined, "DICOM/SHORT": imaging.Quarantined, "DICOM/HUGE": imaging.Quarantined,
		"DICOM/GOOD": imaging.Stored, "setup.exe": imaging.Quarantined, "notes.pdf.lnk": imaging.Quarantined,
		"loop": imaging.Unreadable, "missing": imaging.Unreadable,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if _, err := f.in.Import(ctx, imaging.Request{Paths: []string{root}, Origin: "  "}); !errors.Is(err, imaging.ErrInvalid) {
		t.Errorf("import without an origin: got %v, want ErrInvalid", err)
	}
	if _, err := f.in.Import(ctx, imaging.Request{Origin: "CD"}); !errors.Is(err, imaging.ErrInvalid) {
		t.Errorf("import of nothing: got %v, want ErrInvalid", err)
	}
	if _, err := f.in.Import(ctx, imaging.Request{Paths: []string{root}, Origin: "CD", Media: "floppy of 김민수"}); !errors.Is(err, imaging.ErrInvalid) {
		t.Errorf("import with a media kind not on the list: got %v, want ErrInvalid", err)
	}
}

// TestImportLimit keeps a file over the size limit out, with no content.
func TestImportLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	in, err := imaging.New(ctx, imaging.Config{DB: f.h.DB, Keys: f.h.Keys, Audit: f.h.Audit, Door: f.h.Door, Alerts: f.h.Alerts, MaxFileBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	poly := study(t, 41, testMRN, 1, 1, peHeader())[0].Data
	root := writeFiles(t, map[string][]byte{"DICOM/IM1": study(t, 41, testMRN, 1, 1, nil)[0].Data, "DICOM/POLY": poly})
	rep, err := in.Import(ctx, imaging.Request{Paths: []string{root}, Origin: "CD"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Quarantined != 1 {
		t.Fatalf("report %+v, want the clean file failed (too large) and the polyglot held without content", rep.Files)
	}
	items, _ := in.Quarantined(ctx, f.officer, imaging.Filter{})
	if len(items) != 1 || items[0].Kept {
		t.Errorf("items %+v, want one held without content", items)
	}
	_, err = in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "checked", Out: io.Discard}, items[0].ID)
	if !errors.Is(err, imaging.ErrNotHeld) {
		t.Errorf("release of an item without content: got %v, want ErrNotHeld", err)
	}
}
