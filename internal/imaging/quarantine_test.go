package imaging_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
)

// importCD imports the test CD and returns the quarantine ids by the
// file's path on the media.
func importCD(t *testing.T, f *fixture) (cdTree, map[string]string) {
	t.Helper()
	cd := newCD(t)
	rep, err := f.in.Import(context.Background(), imaging.Request{Paths: []string{cd.root}, Origin: "CD from Busan clinic"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, o := range rep.Files {
		if o.Quarantine != "" {
			ids[strings.TrimPrefix(filepath.ToSlash(o.Path), filepath.ToSlash(cd.root)+"/")] = o.Quarantine
		}
	}
	return cd, ids
}

func (f *fixture) lastEvent(t *testing.T) audit.Event {
	t.Helper()
	var last audit.Event
	if err := audit.Scan(context.Background(), f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error { last = e; return nil }); err != nil {
		t.Fatal(err)
	}
	return last
}

func TestReleaseRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	_, ids := importCD(t, f)
	noMFA, err := f.h.Staff.Authenticate(ctx, "officer.han", f.password, "test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		d       imaging.Decision
		id      string
		want    error
		outcome string
	}{
		{"a physician", imaging.Decision{Who: f.doctor, Reason: "looks fine"}, ids["DICOM/POLY/IM0001"], imaging.ErrNotOfficer, audit.Denied},
		{"an officer without a second factor", imaging.Decision{Who: noMFA, Reason: "looks fine"}, ids["DICOM/POLY/IM0001"], imaging.ErrNotOfficer, audit.Denied},
		{"the import job", imaging.Decision{Who: identity.System("import"), Reason: "auto"}, ids["DICOM/POLY/IM0001"], imaging.ErrNotOfficer, audit.Denied},
		{"no reason", imaging.Decision{Who: f.officer, Reason: "  "}, ids["DICOM/POLY/IM0001"], imaging.ErrInvalid, audit.Failed},
		{"not an image, nowhere to put it", imaging.Decision{Who: f.officer, Reason: "checked"}, ids["AUTORUN.INF"], imaging.ErrInvalid, audit.Failed},
		{"no patient for the study", imaging.Decision{Who: f.officer, Reason: "checked"}, ids["DICOM/OTHER/IM0001"], records.ErrNotFound, audit.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.in.Release(ctx, tt.d, tt.id)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			ev := f.lastEvent(t)
			if ev.Action != "quarantine.release" || ev.Outcome != tt.outcome || ev.Resource != "Quarantine/"+tt.id {
				t.Errorf("last audit event %+v, want a %s release of %s", ev, tt.outcome, tt.id)
			}
			it, err := f.in.QuarantineItem(ctx, f.officer, tt.id)
			if err != nil || it.State != imaging.StateHeld {
				t.Errorf("item after a refused release: %+v, %v; want it still held", it, err)
			}
		})
	}
	if _, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "x"}, "q_nosuch"); !errors.Is(err, imaging.ErrNotFound) {
		t.Errorf("unknown item: got %v, want ErrNotFound", err)
	}
}

func TestReleaseAndDelete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	cd, ids := importCD(t, f)
	poly := ids["DICOM/POLY/IM0001"]
	rel, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "vendor confirmed the preamble is a viewer stub"}, poly)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Stored == nil || rel.Stored.Pseudonym != f.patient.Pseudonym || rel.Item.State != imaging.StateReleased || rel.Item.DecidedBy != f.officer.ID {
		t.Fatalf("release %+v, want the polyglot stored for the patient and the item released by the officer", rel)
	}
	ev := f.lastEvent(t)
	if ev.Action != "quarantine.release" || ev.Outcome != audit.Success || !strings.Contains(ev.Reason, "viewer stub") || ev.Patient != f.patient.Pseudonym {
		t.Errorf("last event %+v, want the officer's release with the reason and the patient's pseudonym", ev)
	}
	// The store is written by the import job (the policy keeps officers
	// out of clinical data) with the officer named in the event.
	write := f.findEvent(t, func(e audit.Event) bool {
		return e.Action == "imaging.write" && e.Resource == "ImagingInstance/"+rel.Stored.ID
	})
	if write.Actor != "system:import" || !strings.Contains(write.Source, f.officer.ID) || !strings.Contains(write.Reason, "quarantine "+poly+" released by "+f.officer.ID) {
		t.Errorf("store event %+v, want the import job, the officer named in source and reason", write)
	}
	got, err := f.h.Door.ImagingInstance(ctx, f.treat(f.doctor), rel.Stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data[:128], make([]byte, 128)) || !bytes.Equal(got.Data[128:], cd.polyglot.Data[128:]) {
		t.Error("the released polyglot was not stored with its preamble zeroed")
	}
	if _, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "again"}, poly); !errors.Is(err, imaging.ErrNotHeld) {
		t.Errorf("second release: got %v, want ErrNotHeld", err)
	}

	// Once the patient is registered, the unknown patient's study goes in.
	f.register(t, "MRN-999999", "이서연")
	if _, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "patient registered today"}, ids["DICOM/OTHER/IM0001"]); err != nil {
		t.Errorf("release after registration: %v", err)
	}

	// A non-image is handed to the officer, audited before the first
	// byte, then deleted.
	autorun := ids["AUTORUN.INF"]
	out := &auditedWriter{t: t, f: f, item: autorun}
	if _, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "keep a copy for the incident report", Out: out}, autorun); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "[autorun]") || !out.audited {
		t.Errorf("released content %q (audited first: %v), want the autorun file after its audit event", out.String(), out.audited)
	}
	it, err := f.in.Delete(ctx, imaging.Decision{Who: f.officer, Reason: "incident closed"}, autorun)
	if err != nil {
		t.Fatal(err)
	}
	if it.State != imaging.StateDeleted || it.Kept || it.Decision != "incident closed" || !it.Destroyed || it.Name != "" || it.HandedTo != f.officer.ID {
		t.Errorf("deleted item %+v, want it destroyed, its name unreadable, the copy's holder named", it)
	}
	checkShredded(t, f, autorun)
	if _, err := f.in.Delete(ctx, imaging.Decision{Who: f.officer, Reason: "again"}, autorun); !errors.Is(err, imaging.ErrNotHeld) {
		t.Errorf("second delete: got %v, want ErrNotHeld", err)
	}
	if _, err := f.in.Delete(ctx, imaging.Decision{Who: f.doctor, Reason: "tidy up"}, poly); !errors.Is(err, imaging.ErrNotOfficer) {
		t.Errorf("physician deleting: got %v, want ErrNotOfficer", err)
	}
}

// auditedWriter checks, when the released bytes arrive, that the release
// is already in the audit log.
type auditedWriter struct {
	bytes.Buffer
	t       *testing.T
	f       *fixture
	item    string
	audited bool
}

func (w *auditedWriter) Write(p []byte) (int, error) {
	if w.Len() == 0 {
		ev := w.f.lastEvent(w.t)
		w.audited = ev.Action == "quarantine.release" && ev.Resource == "Quarantine/"+w.item && ev.Outcome == audit.Success
	}
	return w.Buffer.Write(p)
}

func (f *fixture) findEvent(t *testing.T, match func(audit.Event) bool) audit.Event {
	t.Helper()
	var found audit.Event
	err := audit.Scan(context.Background(), f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		if match(e) {
			found = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// checkShredded: the item's key row keeps no key, its content is gone and
// its sealed record cannot be opened any more.
func checkShredded(t *testing.T, f *fixture, id string) {
	t.Helper()
	ctx := context.Background()
	var wrapped, content []byte
	var destroyedAt *int64
	if err := f.h.DB.QueryRow(ctx, `SELECT wrapped, destroyed_at FROM data_keys WHERE owner = ?`, "quarantine:"+id).Scan(&wrapped, &destroyedAt); err != nil {
		t.Fatal(err)
	}
	if wrapped != nil || destroyedAt == nil {
		t.Errorf("key of %s: wrapped %d bytes, destroyed %v; want it destroyed", id, len(wrapped), destroyedAt)
	}
	if err := f.h.DB.QueryRow(ctx, `SELECT content FROM quarantine_items WHERE id = ?`, id).Scan(&content); err != nil || content != nil {
		t.Errorf("content of %s still stored (%v)", id, err)
	}
	if _, err := f.h.Keys.ForOwner(ctx, f.h.DB, "quarantine:"+id); !errors.Is(err, keys.ErrDestroyed) {
		t.Errorf("key of %s: got %v, want ErrDestroyed", id, err)
	}
}

// TestQuarantineTampered swaps two items' sealed content: neither opens.
func TestQuarantineTampered(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	_, ids := importCD(t, f)
	a, b := ids["DICOM/POLY/IM0001"], ids["DICOM/OTHER/IM0001"]
	if _, err := f.h.DB.Exec(ctx, `UPDATE quarantine_items SET content = (SELECT content FROM quarantine_items WHERE id = ?) WHERE id = ?`, a, b); err != nil {
		t.Fatal(err)
	}
	f.register(t, "MRN-999999", "이서연")
	_, err := f.in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "checked"}, b)
	if !errors.Is(err, keys.ErrTampered) {
		t.Errorf("release of moved content: got %v, want ErrTampered", err)
	}
	if _, err := f.h.DB.Exec(ctx, `UPDATE quarantine_items SET record = (SELECT record FROM quarantine_items WHERE id = ?) WHERE id = ?`, a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.QuarantineItem(ctx, f.officer, b); !errors.Is(err, keys.ErrTampered) {
		t.Errorf("listing a moved record: got %v, want ErrTampered", err)
	}
}

// TestNoPlaintextOnDisk searches every file of the installation for what
// the imported files say about the patient.
func TestNoPlaintextOnDisk(t *testing.T) {
	f := newFixture(t, guard.Config{})
	cd, _ := importCD(t, f)
	p := cd.study[0].Patient
	needles := []string{testMRN, p.NameLatin, p.NameHangul, cd.study[0].StudyInstanceUID, cd.polyglot.Patient.NameLatin, "MRN-999999",
		"Busan clinic", "POLY/IM0001", "AUTORUN"}
	dir := f.h.Config.Path(".")
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(raw, []byte(n)) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(path), n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Errorf("only %d files searched", files)
	}
}
