package records

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// imagingFixture allows the import job to write imaging and the physician
// to read it, as the shipped policy does.
func imagingFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	f := newFixture(t, db)
	allow := f.door.decider.(allowList)
	allow[[3]string{identity.RoleSystem, ActionWrite, ClassImaging}] = true
	allow[[3]string{"physician", ActionRead, ClassImaging}] = true
	return f
}

var importJob = Request{Who: identity.System("import"), Purpose: "TREAT"}

// instance makes a stand-in DICOM file: the door stores bytes, it does not
// parse them.
func instance(study, series, sop, body string) ImagingInstance {
	data := []byte("DICM " + body)
	sum := sha256.Sum256(data)
	return ImagingInstance{StudyUID: study, SeriesUID: series, InstanceUID: sop, SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
		Modality: "CT", StudyDate: "20240501", Description: "CT chest", SHA256: hex.EncodeToString(sum[:]),
		Effective: time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC), Source: "CD from Busan clinic", Data: data}
}

func TestImagingStoreAndRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := imagingFixture(t, db)
		reg := f.register(t, alice)
		want := []ImagingInstance{instance("1.2.3.4", "1.2.3.4.1", "1.2.3.4.1.1", "first slice of 김민수"),
			instance("1.2.3.4", "1.2.3.4.1", "1.2.3.4.1.2\x00", "second slice")}
		for _, in := range want {
			rec, err := f.door.StoreImaging(ctx, importJob, " mrn-000001 ", in)
			if err != nil {
				t.Fatal(err)
			}
			if rec.PatientID != reg.ID || rec.Duplicate {
				t.Errorf("receipt %+v, want a new instance of %s", rec, reg.ID)
			}
		}
		got, err := f.door.ImagingStudy(ctx, Request{Who: f.doc, Purpose: "TREAT"}, "1.2.3.4")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d instances, want 2", len(got))
		}
		for _, g := range got {
			w := want[0]
			if g.InstanceUID == "1.2.3.4.1.2" {
				w = want[1]
			}
			if !bytes.Equal(g.Data, w.Data) || g.SeriesUID != w.SeriesUID || g.Modality != "CT" || g.Source != w.Source || g.Pseudonym != reg.Pseudonym {
				t.Errorf("read back %+v, want %+v", g, w)
			}
		}
		list, err := f.door.ImagingInstances(ctx, Request{Who: f.doc, Purpose: "TREAT"}, reg.ID)
		if err != nil || len(list) != 2 || list[0].Data != nil {
			t.Errorf("listing: %d instances (data %v), err %v; want 2 without files", len(list), list != nil && list[0].Data != nil, err)
		}
		evs := f.events(t)
		var writes, reads int
		for _, e := range evs {
			switch e.Action {
			case "imaging.write":
				writes++
				if !strings.Contains(e.Reason, "CD from Busan clinic") || e.Actor != "system:import" || e.Patient != reg.Pseudonym {
					t.Errorf("write event %+v, want the import job, the origin and the pseudonym", e)
				}
			case "imaging.read":
				reads++
			}
			if raw := e.Reason + e.Resource + string(e.Decision); strings.Contains(raw, "1.2.3.4") || strings.Contains(strings.ToUpper(raw), "MRN-000001") {
				t.Errorf("audit event %d names an identifier: %+v", e.Index, e)
			}
		}
		if writes != 2 || reads != 2 {
			t.Errorf("got %d imaging writes and %d reads audited, want 2 and 2", writes, reads)
		}
		assertNoPlaintext(t, db, "phi_imaging", "1.2.3.4", "김민수", "slice", "CT chest", "20240501")
	})
}

// assertNoPlaintext fails when any column of table holds a needle.
func assertNoPlaintext(t *testing.T, db *store.DB, table string, needles ...string) {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		n++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var b []byte
			switch x := v.(type) {
			case []byte:
				b = x
			case string:
				b = []byte(x)
			}
			for _, needle := range needles {
				if bytes.Contains(b, []byte(needle)) {
					t.Errorf("%s.%s holds %q in plaintext", table, cols[i], needle)
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("%s is empty: nothing was checked", table)
	}
}

func TestImagingDuplicateAndConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := imagingFixture(t, db)
		f.register(t, alice)
		bob := alice
		bob.Name, bob.RRN, bob.Phone, bob.MRN = "이서연", "950505-2345678", "010-9999-0000", "MRN-000002"
		f.register(t, bob)
		first, err := f.door.StoreImaging(ctx, importJob, alice.MRN, instance("1.9", "1.9.1", "1.9.1.1", "a"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.door.StoreImaging(ctx, importJob, alice.MRN, instance("1.9", "1.9.1", "1.9.1.1", "a"))
		if err != nil || !again.Duplicate || again.ID != first.ID {
			t.Errorf("same instance again: %+v, %v; want a duplicate of %s", again, err, first.ID)
		}
		tests := []struct {
			name, mrn string
			in        ImagingInstance
		}{
			{"other content", alice.MRN, instance("1.9", "1.9.1", "1.9.1.1", "b")},
			{"other patient", bob.MRN, instance("1.9", "1.9.1", "1.9.1.1", "a")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(f.events(t))
				_, err := f.door.StoreImaging(ctx, importJob, tt.mrn, tt.in)
				if !errors.Is(err, ErrConflict) {
					t.Fatalf("got %v, want ErrConflict", err)
				}
				evs := f.events(t)
				if len(evs) != before+1 || evs[len(evs)-1].Outcome != audit.Failed {
					t.Errorf("the refused write was not audited as failed: %d new events", len(evs)-before)
				}
			})
		}
		var n int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM phi_imaging`).Scan(&n)
		if n != 1 {
			t.Errorf("got %d stored instances, want 1", n)
		}
	})
}

func TestImagingRefusals(t *testing.T) {
	ctx := context.Background()
	f := imagingFixture(t, storetest.OpenSQLite(t))
	reg := f.register(t, alice)
	noUID := instance("1.5", "", "1.5.1.1", "x")
	tests := []struct {
		name string
		req  Request
		mrn  string
		in   ImagingInstance
		want error
	}{
		{"unknown MRN", importJob, "MRN-404", instance("1.5", "1.5.1", "1.5.1.1", "x"), ErrNotFound},
		{"empty MRN", importJob, "", instance("1.5", "1.5.1", "1.5.1.1", "x"), ErrNotFound},
		{"missing series UID", importJob, alice.MRN, noUID, ErrInvalid},
		{"no file", importJob, alice.MRN, ImagingInstance{StudyUID: "1", SeriesUID: "1.1", InstanceUID: "1.1.1"}, ErrInvalid},
		{"nurse may not import", Request{Who: f.nurse, Purpose: "TREAT"}, alice.MRN, instance("1.5", "1.5.1", "1.5.1.1", "x"), ErrDenied},
		{"nurse learns nothing of unknown MRNs", Request{Who: f.nurse, Purpose: "TREAT"}, "MRN-404", instance("1.5", "1.5.1", "1.5.1.1", "x"), ErrDenied},
		{"unauthenticated", Request{Purpose: "TREAT"}, alice.MRN, instance("1.5", "1.5.1", "1.5.1.1", "x"), ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.door.StoreImaging(ctx, tt.req, tt.mrn, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	miss := f.events(t)
	if last := miss[len(miss)-1]; last.Outcome != audit.Denied {
		t.Errorf("last event %+v, want the nurse's denial", last)
	}
	if _, err := f.door.StoreImaging(ctx, importJob, alice.MRN, instance("1.5", "1.5.1", "1.5.1.1", "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.door.ImagingStudy(ctx, Request{Who: f.nurse, Purpose: "TREAT"}, "1.5"); !errors.Is(err, ErrDenied) {
		t.Errorf("nurse reading imaging: got %v, want ErrDenied", err)
	}
	if _, err := f.door.ImagingStudy(ctx, Request{Who: f.doc, Purpose: "TREAT"}, "9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown study: got %v, want ErrNotFound", err)
	}
	dir := identity.NewDirectory(f.db)
	dir.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	if err := f.door.DestroyPatient(ctx, Request{Who: staff(t, dir, "officer", "security_officer"), Purpose: "HOPERAT"}, reg.ID, "REQUEST test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.door.ImagingStudy(ctx, Request{Who: f.doc, Purpose: "TREAT"}, "1.5"); !errors.Is(err, keys.ErrDestroyed) {
		t.Errorf("reading a destroyed patient's study: got %v, want ErrDestroyed", err)
	}
	if _, err := f.door.StoreImaging(ctx, importJob, alice.MRN, instance("1.6", "1.6.1", "1.6.1.1", "y")); !errors.Is(err, ErrNotFound) {
		t.Errorf("importing for a destroyed patient: got %v, want ErrNotFound (the MRN index is gone)", err)
	}
}

func TestImagingCiphertextMovedFails(t *testing.T) {
	ctx := context.Background()
	f := imagingFixture(t, storetest.OpenSQLite(t))
	f.register(t, alice)
	a, err := f.door.StoreImaging(ctx, importJob, alice.MRN, instance("1.7", "1.7.1", "1.7.1.1", "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.door.StoreImaging(ctx, importJob, alice.MRN, instance("1.7", "1.7.1", "1.7.1.2", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, `UPDATE phi_imaging SET data = (SELECT data FROM phi_imaging WHERE id = ?) WHERE id = ?`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.door.ImagingInstance(ctx, Request{Who: f.doc, Purpose: "TREAT"}, b.ID); !errors.Is(err, keys.ErrTampered) {
		t.Errorf("got %v, want ErrTampered for a file moved to another row", err)
	}
}

// TestImagingRetention checks that images count in a patient's holdings
// and last activity, and that retention deletes expired images.
func TestImagingRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := imagingFixture(t, db)
		reg := f.register(t, alice)
		old := instance("1.5", "1.5.1", "1.5.1.1", "old slice")
		recent := instance("1.6", "1.6.1", "1.6.1.1", "recent slice")
		recent.Effective = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, in := range []ImagingInstance{old, recent} {
			if _, err := f.door.StoreImaging(ctx, importJob, alice.MRN, in); err != nil {
				t.Fatal(err)
			}
		}
		h, err := f.door.Inventory(ctx, reg.ID)
		if err != nil {
			t.Fatal(err)
		}
		var imaging ClassHolding
		for _, c := range h.Classes {
			if c.Class == ClassImaging {
				imaging = c
			}
		}
		if imaging.Count != 2 {
			t.Fatalf("holdings %+v, want 2 imaging instances", h.Classes)
		}
		// A patient whose only recent data is a study is not expired whole.
		ids, err := f.door.ExpiredPatients(ctx, Expiry{Patient: time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC),
			Classes: map[string]time.Time{ClassImaging: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}})
		if err != nil || len(ids) != 0 {
			t.Errorf("expired patients %v (%v), want none: a recent image keeps the patient", ids, err)
		}
		counts, err := f.door.ExpiredCounts(ctx, ClassImaging, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil || counts[reg.ID] != 1 {
			t.Errorf("expired imaging counts %v (%v), want the old slice", counts, err)
		}
		f.allow("system", ActionDestroy, ClassImaging)
		res, err := f.door.DeleteExpired(ctx, Request{Who: identity.System("lifecycle"), Purpose: "HOPERAT"}, ClassImaging,
			time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), []string{reg.ID}, "POLICY kr/imaging 5y")
		if err != nil || res.Records != 1 {
			t.Fatalf("delete expired imaging: %+v, %v", res, err)
		}
		var n int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM phi_imaging WHERE patient_id = ?`, reg.ID).Scan(&n)
		if n != 1 {
			t.Errorf("%d imaging rows left, want the recent one", n)
		}
	})
}
