package lifecycle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/synth"
)

// yearsAgo is a time n years (and a day) before the stack's start.
func yearsAgo(n int) time.Time { return lifecycletest.Start.AddDate(-n, 0, -1) }

func person(g *synth.Generator) records.Patient {
	p := g.Person()
	return records.Patient{Name: p.Name, RRN: p.RRN, Phone: p.Phone, BirthDate: p.BirthDate, Sex: p.Sex, Address: p.Address}
}

// holdings counts a patient's records by class (0 classes once destroyed
// rows are gone); destroyed reports crypto-shredding.
func holdings(t *testing.T, s *lifecycletest.Stack, id string) (map[string]int, bool) {
	t.Helper()
	h, err := s.Door.Holdings(context.Background(), records.Request{Who: s.Officer, Purpose: "HOPERAT"}, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range h.Classes {
		out[c.Class] = c.Count
	}
	return out, h.Destroyed != nil
}

// TestRetentionRun: the kr schedule at 2026-03-02 destroys exactly what
// expired — a former patient goes whole by crypto-shredding, expired rows
// of a current patient are deleted — keeps what a legal hold covers, and
// signs a certificate that verifies and names no patient.
func TestRetentionRun(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		schedule, _, _ := lifecycle.Profile("kr")
		for i, r := range schedule.Rules {
			if r.Class == records.ClassImaging {
				schedule.Rules[i].LegalHold, schedule.Rules[i].HoldReason = true, "regulator's imaging audit 2026-07"
			}
		}
		s := lifecycletest.New(t, b, &schedule)
		g := synth.New(7)
		current, former, held := s.Register(t, person(g)), s.Register(t, person(g)), s.Register(t, person(g))
		// current: observations 6 y (expired) and 1 y old, a note 6 y old
		// (kept 10 y), medication 3 y old (expired after 2 y), imaging 6 y
		// old (expired but the imaging class is on hold).
		s.Add(t, current.ID, records.ClassObservation, 4, yearsAgo(6))
		s.Add(t, current.ID, records.ClassObservation, 2, yearsAgo(1))
		s.Add(t, current.ID, records.ClassNote, 1, yearsAgo(6))
		s.Add(t, current.ID, records.ClassMedication, 3, yearsAgo(3))
		s.Add(t, current.ID, records.ClassImaging, 1, yearsAgo(6))
		// former: last seen 7 years ago, everything expired.
		s.Add(t, former.ID, records.ClassObservation, 5, yearsAgo(7))
		s.Add(t, former.ID, records.ClassMedication, 2, yearsAgo(7))
		// held: like former, under a patient hold.
		s.Add(t, held.ID, records.ClassObservation, 5, yearsAgo(7))
		hold, err := s.Engine.PlaceHold(ctx, s.Officer, lifecycle.Hold{PatientID: held.ID, Reason: "litigation 2026-가합-1234"})
		if err != nil {
			t.Fatal(err)
		}

		res, err := s.Engine.Run(ctx, lifecycle.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := holdings(t, s, current.ID)
		if want := map[string]int{"observation": 2, "note": 1, "imaging": 1}; !cmp.Equal(got, want) {
			t.Errorf("current patient keeps %v, want %v", got, want)
		}
		if _, destroyed := holdings(t, s, former.ID); !destroyed {
			t.Error("the former patient was not crypto-shredded")
		}
		if _, err := s.Door.Patient(ctx, records.Request{Who: s.Doctor, Purpose: "TREAT"}, former.ID); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("reading the former patient: got %v, want ErrDestroyed", err)
		}
		if got, destroyed := holdings(t, s, held.ID); destroyed || got["observation"] != 5 {
			t.Errorf("held patient: %v destroyed=%v, want all 5 observations kept", got, destroyed)
		}

		c := res.Certificate
		if c.Records != 4+3+7 || c.Patients != 2 {
			t.Errorf("certificate counts %d records of %d patients, want 14 of 2", c.Records, c.Patients)
		}
		wantItems := map[string][2]int{"demographics (whole patient)": {7, 1}, "observation": {4, 1}, "medication": {3, 1}}
		for _, it := range c.Destroyed {
			if w, ok := wantItems[it.Class]; ok && (it.Records != w[0] || it.Patients != w[1]) {
				t.Errorf("%s: %d records of %d patients, want %v", it.Class, it.Records, it.Patients, w)
			}
		}
		var heldItems []string
		for _, h := range c.Held {
			heldItems = append(heldItems, fmt.Sprintf("%s %s %d/%d", h.Hold, h.Class, h.Records, h.Patients))
		}
		wantHeld := []string{hold.ID + " demographics 0/1", "kr/imaging imaging 1/1", hold.ID + " observation 5/1"}
		if !cmp.Equal(heldItems, wantHeld) {
			t.Errorf("held items:\n%s", cmp.Diff(wantHeld, heldItems))
		}
		verified, err := lifecycle.VerifyCertificate(res.Signed, s.Engine.Signer().VerifierKey())
		if err != nil || verified.ID != c.ID || verified.Records != c.Records {
			t.Errorf("certificate does not verify: %v", err)
		}
		for _, p := range []records.Patient{current, former, held} {
			for _, v := range []string{p.Pseudonym, p.ID, p.Name, p.RRN} {
				if bytes.Contains(res.Signed, []byte(v)) {
					t.Errorf("the certificate names %q", v)
				}
			}
		}
		tampered := bytes.Replace(res.Signed, []byte(`"records": 14`), []byte(`"records": 15`), 1)
		if _, err := lifecycle.VerifyCertificate(tampered, s.Engine.Signer().VerifierKey()); !errors.Is(err, lifecycle.ErrBadCertificate) {
			t.Errorf("changed certificate: got %v, want ErrBadCertificate", err)
		}
		if n := len(s.EventsWith(t, "lifecycle.destroy", audit.Denied)); n != len(wantHeld) {
			t.Errorf("%d held items audited as refused destructions, want %d", n, len(wantHeld))
		}

		s.Clock.Advance(time.Hour)
		again, err := s.Engine.Run(ctx, lifecycle.RunOptions{})
		if err != nil || again.Certificate.Records != 0 {
			t.Errorf("second run destroyed %d records (%v), want 0", again.Certificate.Records, err)
		}
		s.VerifyAudit(t)
	})
}

// TestRunRefusesBadClocks: a clock far ahead of or behind the machine's, or
// before the last run, is refused and audited; nothing is destroyed.
func TestRunRefusesBadClocks(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		wall := lifecycletest.NewClock(lifecycletest.Start)
		s := lifecycletest.New(t, b, nil)
		p := s.Register(t, person(synth.New(3)))
		s.Add(t, p.ID, records.ClassMedication, 2, yearsAgo(3))
		engine, err := lifecycle.New(ctx, lifecycle.Config{DB: s.DB, Door: s.Door, Audit: s.Audit, Keys: s.H.Keys, HospitalID: s.H.Config.Hospital.ID,
			Schedule: s.Engine.Schedule(), Now: s.Clock.Now, Wall: wall.Now})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			now  time.Time
			says string
		}{
			{"ten years ahead", lifecycletest.Start.AddDate(10, 0, 0), "ahead of this machine's clock"},
			{"a year behind", lifecycletest.Start.AddDate(-1, 0, 0), "behind this machine's clock"},
		} {
			s.Clock.Set(c.now)
			_, err := engine.Run(ctx, lifecycle.RunOptions{})
			if !errors.Is(err, lifecycle.ErrClock) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s: got %v, want ErrClock saying %q", c.name, err, c.says)
			}
		}
		s.Clock.Set(lifecycletest.Start)
		if _, err := engine.Run(ctx, lifecycle.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		s.Clock.Set(lifecycletest.Start.Add(-time.Hour))
		if _, err := engine.Run(ctx, lifecycle.RunOptions{}); !errors.Is(err, lifecycle.ErrClock) || !strings.Contains(err.Error(), "went backwards") {
			t.Errorf("before the last run: got %v, want ErrClock", err)
		}
		if n := len(s.EventsWith(t, "lifecycle.run", audit.Denied)); n != 3 {
			t.Errorf("%d refused runs audited, want 3", n)
		}
		if n := len(s.EventsWith(t, "medication.destroy", audit.Success)); n != 1 {
			t.Errorf("medication destroyed %d times, want once (by the good run only)", n)
		}
	})
}

// TestErasure: refused with the rule and the date while law keeps the
// data, refused while a hold stands, and otherwise done by
// crypto-shredding: no plaintext of the patient left in any file of the
// data directory, the audit log still verifying, recipients asked.
func TestErasure(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		s := lifecycletest.New(t, b, nil)
		g := synth.New(11)
		recent, heldP, former := s.Register(t, person(g)), s.Register(t, person(g)), s.Register(t, person(g))
		s.Add(t, recent.ID, records.ClassNote, 1, yearsAgo(1))
		s.Add(t, heldP.ID, records.ClassObservation, 1, yearsAgo(6))
		s.Add(t, former.ID, records.ClassObservation, 3, yearsAgo(6))
		hold, _ := s.Engine.PlaceHold(ctx, s.Officer, lifecycle.Hold{PatientID: heldP.ID, Reason: "insurance dispute"})
		req := func(p records.Patient) lifecycle.PatientRequest {
			return lifecycle.PatientRequest{PatientID: p.ID, Reference: "ER-2026-0042", Received: "staff:clerk"}
		}

		_, err := s.Engine.Erase(ctx, req(recent))
		var refused *lifecycle.RefusedError
		if !errors.As(err, &refused) || refused.Rule != "kr/note" || !refused.PossibleFrom.Equal(yearsAgo(1).AddDate(10, 0, 0)) {
			t.Errorf("recent patient: got %v, want refusal by kr/note until %s", err, yearsAgo(1).AddDate(10, 0, 0))
		}
		if _, err := s.Engine.Erase(ctx, req(heldP)); !errors.As(err, &refused) || refused.Rule != hold.ID || !refused.PossibleFrom.IsZero() {
			t.Errorf("held patient: got %v, want refusal by hold %s", err, hold.ID)
		}
		if n := len(s.EventsWith(t, "patient.erase", audit.Denied)); n != 2 {
			t.Errorf("%d refused erasures audited, want 2", n)
		}
		s.AddRecipient(t, "pharmacy-a", provision.KindPharmacy, provision.Agreement{Purposes: []string{"TREAT"},
			Classes: []string{"observation"}, Form: bundle.Identified, Retention: lifecycle.Period{Days: 30}})
		if _, err := s.Provision.Provide(ctx, provision.Request{Request: records.Request{Who: s.Doctor, Purpose: "TREAT"},
			Recipient: "pharmacy-a", PatientID: former.ID, Classes: []string{"observation"}}); err != nil {
			t.Fatal(err)
		}

		done, err := s.Engine.Erase(ctx, req(former))
		if err != nil {
			t.Fatalf("erase the former patient: %v", err)
		}
		if done.Records != 3 || len(done.Outside) != 1 {
			t.Errorf("erasure %+v: want 3 records shredded and the package outside", done)
		}
		if as, _ := s.H.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindProvision}); len(as) != 1 || as[0].Patient != former.Pseudonym {
			t.Errorf("alerts %+v, want one asking the pharmacy to destroy its copy", as)
		}
		if _, err := s.Door.Records(ctx, records.Request{Who: s.Doctor, Purpose: "TREAT"}, former.ID, records.Filter{Class: records.ClassObservation}); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("reading an erased patient: got %v, want ErrDestroyed", err)
		}
		if _, err := s.Engine.Erase(ctx, req(former)); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("second erasure: got %v, want ErrDestroyed", err)
		}
		s.VerifyAudit(t)
		if err := s.DB.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		for _, hit := range plaintext(t, s.Dir, former) {
			t.Errorf("erased patient's %s", hit)
		}
	})
}

// plaintext searches every file under dir for the patient's identifying
// values (the SQLite database, its WAL, the checkpoint file …).
func plaintext(t *testing.T, dir string, p records.Patient) []string {
	t.Helper()
	var hits []string
	needles := []string{p.Name, p.RRN, strings.ReplaceAll(p.RRN, "-", ""), p.Phone, strings.ReplaceAll(p.Phone, "-", ""), p.Address}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(raw, []byte(n)) {
				hits = append(hits, n+" in "+filepath.Base(path))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestExportAndAccessHistory: a patient's copy of their own record is one
// audited export; the access history lists every action on this patient's
// record and nothing of anyone else's.
func TestExportAndAccessHistory(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		s := lifecycletest.New(t, b, nil)
		g := synth.New(5)
		p, other := s.Register(t, person(g)), s.Register(t, person(g))
		s.Add(t, p.ID, records.ClassObservation, 2, yearsAgo(1))
		s.Add(t, p.ID, records.ClassNote, 1, yearsAgo(1))
		s.Add(t, other.ID, records.ClassObservation, 1, yearsAgo(1))
		if _, err := s.Door.Patient(ctx, records.Request{Who: s.Doctor, Purpose: "TREAT"}, p.ID); err != nil {
			t.Fatal(err)
		}
		portal := s.Portal(t, p.ID)
		raw, err := s.Engine.ExportForPatient(ctx, portal, "AR-1")
		if err != nil {
			t.Fatal(err)
		}
		var bun bundle.Bundle
		if err := json.Unmarshal(raw, &bun); err != nil || len(bun.Entry) != 4 || !bytes.Contains(raw, []byte(p.Name)) || bytes.Contains(raw, []byte(other.Name)) {
			t.Errorf("export: %d entries (want patient + 3 records), err %v", len(bun.Entry), err)
		}
		hist, err := s.Door.AccessHistory(ctx, portal, records.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, a := range hist {
			actions = append(actions, a.Action+" by "+a.Role)
		}
		want := []string{"demographics.write by administrative", "observation.write by physician", "note.write by physician", "demographics.read by physician",
			"demographics.write by administrative", "patient.export by patient", "audit.read by patient"}
		if !cmp.Equal(actions, want) {
			t.Errorf("access history:\n%s", cmp.Diff(want, actions))
		}
	})
}

// TestTrace: the data map lists every copy the test made — sealed records
// by class, the packages sent and their receipt state — and the hooks
// still to be connected; after erasure it says the data is destroyed.
func TestTrace(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		s := lifecycletest.New(t, b, nil)
		p := s.Register(t, person(synth.New(9)))
		s.Add(t, p.ID, records.ClassObservation, 3, yearsAgo(6))
		s.Add(t, p.ID, records.ClassMedication, 2, yearsAgo(6))
		a := provision.Agreement{Purposes: []string{"TREAT"}, Classes: []string{"observation", "medication"}, Form: bundle.Identified, Retention: lifecycle.Period{Days: 30}}
		pharmacy := s.AddRecipient(t, "pharmacy-a", provision.KindPharmacy, a)
		s.AddRecipient(t, "hospital-b", provision.KindHospital, a)
		send := func(to, class string) provision.Provided {
			out, err := s.Provision.Provide(ctx, provision.Request{Request: records.Request{Who: s.Doctor, Purpose: "TREAT"}, Recipient: to,
				PatientID: p.ID, Classes: []string{class}})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		rx := send("pharmacy-a", "medication")
		send("hospital-b", "observation")
		signer, _ := provision.ParseSigningKey(pharmacy.SigningKey)
		ids, _ := provision.ParseIdentities(pharmacy.AgeIdentity)
		receipt, _ := provision.MakeReceipt(rx.Package, signer, "deleted", s.Clock.Now(), ids...)
		if _, err := s.Provision.ImportReceipt(ctx, receipt); err != nil {
			t.Fatal(err)
		}
		officer := records.Request{Who: s.Officer, Purpose: "HOPERAT"}
		m, err := s.Engine.Trace(ctx, officer, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range m.Locations {
			got = append(got, fmtLocation(l))
		}
		want := []string{"records sealed demographics 1 storage/processing", "records sealed records: medication 2 storage/processing",
			"records sealed records: observation 3 storage/processing", "provision hospital-b 1 provision/utilization",
			"provision pharmacy-a 1 destruction/disposal"}
		slices.Sort(got[3:]) // packages of the same instant come in any order
		if !cmp.Equal(got, want) {
			t.Errorf("data map:\n%s", cmp.Diff(want, got))
		}
		connected := map[string]bool{}
		for _, h := range m.Hooks {
			connected[h.Kind] = h.Connected
		}
		if !cmp.Equal(connected, map[string]bool{"provision": true, "gateway-queue": false, "imaging": false, "ai-dataset": false}) {
			t.Errorf("hooks %+v", m.Hooks)
		}
		if traced := s.EventsWith(t, "audit.search", audit.Success); len(traced) == 0 || traced[len(traced)-1].Resource != "Patient/"+p.Pseudonym+"/holdings" {
			t.Error("the trace was not audited")
		}
		if _, err := s.Engine.Erase(ctx, lifecycle.PatientRequest{PatientID: p.ID, Reference: "ER-9", Received: "portal"}); err != nil {
			t.Fatal(err)
		}
		after, err := s.Engine.Trace(ctx, officer, p.ID)
		if err != nil || !strings.HasPrefix(after.State, "destroyed on ") || after.Locations[0].Stage != lifecycle.StageDestruction {
			t.Errorf("trace after erasure: state %q, %v", after.State, err)
		}
		// Backups made before the erasure hold the wrapped key: the map
		// says so until the key-encryption key is rotated.
		if b := backupLocation(after); b == nil || b.Stage != lifecycle.StageStorage || !strings.Contains(after.State, "until the key-encryption key is rotated") {
			t.Errorf("trace after erasure, before rotation: state %q, backups %+v; want the backups named as still readable", after.State, b)
		}
		if _, err := s.H.Keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		rotated, err := s.Engine.Trace(ctx, officer, p.ID)
		if b := backupLocation(rotated); err != nil || b == nil || b.Stage != lifecycle.StageDestruction || !strings.Contains(rotated.State, "unreadable in backups too") {
			t.Errorf("trace after rotation: state %q, backups %+v, %v; want backups unreadable", rotated.State, b, err)
		}
	})
}

func backupLocation(m lifecycle.DataMap) *lifecycle.Location {
	for i, l := range m.Locations {
		if strings.HasPrefix(l.Place, "backups made before ") {
			return &m.Locations[i]
		}
	}
	return nil
}

func fmtLocation(l lifecycle.Location) string {
	holder := l.Place
	if l.Kind == lifecycle.KindProvision {
		holder = l.Holder[strings.LastIndex(l.Holder, " ")+1 : len(l.Holder)-1]
	}
	return strings.Join([]string{l.Kind, holder, strconv.Itoa(l.Count), l.Stage}, " ")
}
