package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// randomEvents appends n events naming one of patients patients (every
// tenth names none) at random times, some through AppendTx, and
// checkpoints.
func (f *fixture) randomEvents(t *testing.T, n, patients int, seed uint64) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var batch []Event
	for i := range n {
		e := testEvent(i)
		e.Patient = fmt.Sprintf("P-%04d", r.IntN(patients))
		if r.IntN(10) == 0 {
			e.Patient = ""
		}
		e.Time = base.Add(time.Duration(r.IntN(1000)) * time.Minute)
		batch = append(batch, e)
		if len(batch) == 1+r.IntN(300) || i == n-1 {
			if err := db(f).ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
				_, err := f.log.AppendTx(ctx, tx, batch...)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := f.log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func db(f *fixture) *store.DB { return f.db }

// fullScan is what a history read before the index: every event, the
// newest limit kept.
func fullScan(t *testing.T, d *store.DB, q PatientQuery) []Event {
	t.Helper()
	var ring []Event
	err := Scan(context.Background(), d, "main", 0, 0, func(e Event) error {
		if !q.keeps(e) {
			return nil
		}
		if q.Limit > 0 && len(ring) == q.Limit {
			ring = ring[1:]
		}
		ring = append(ring, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func scanPatient(t *testing.T, d *store.DB, q PatientQuery) []Event {
	t.Helper()
	var got []Event
	if err := ScanPatient(context.Background(), d, "main", q, func(e Event) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func indexes(evs []Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Index
	}
	return out
}

func TestScanPatientMatchesFullScan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		f := newFixture(t, d)
		f.randomEvents(t, 2000, 50, 7)
		if total := f.compareScans(t, 50); total < 1700 || total > 1900 { // about 9 in 10 events name a patient
			t.Errorf("the 50 patients' histories hold %d events of 2000", total)
		}
		v, err := (&Verifier{DB: d, Chain: "main", NoteVerifier: f.vf.NoteVerifier, MACKey: f.vf.MACKey,
			CheckpointFile: f.cpFile, Index: true}).Verify(context.Background())
		if err != nil || !v.IndexChecked || !strings.Contains(v.Summary(), "patient index matches") {
			t.Errorf("verify with the index: %v, %+v", err, v)
		}
	})
}

// compareScans compares ScanPatient with a full scan for each of the
// patients and queries, and returns how many events the patients'
// unlimited histories hold.
func (f *fixture) compareScans(t *testing.T, patients int) int {
	t.Helper()
	from := time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC)
	queries := []PatientQuery{{Limit: 0}, {Limit: 1}, {Limit: 7}, {Limit: 100}, {Limit: 1000},
		{Limit: 5, From: from, To: from.Add(6 * time.Hour)},
		{Limit: 10, Match: func(e Event) bool { return e.Actor == "staff-3" }}}
	total := 0
	for p := range patients {
		for qi, q := range queries {
			q.Pseudonym = fmt.Sprintf("P-%04d", p)
			want, got := fullScan(t, f.db, q), scanPatient(t, f.db, q)
			if !slices.Equal(indexes(got), indexes(want)) {
				t.Fatalf("patient %s query %d: index gives %v, full scan %v", q.Pseudonym, qi, indexes(got), indexes(want))
			}
			if qi == 0 {
				total += len(got)
			}
		}
	}
	return total
}

// TestScanPatientCatchesUp: events appended after the last catch-up (the
// background indexer stopped, so they stay past the watermark) are in the
// history, because ScanPatient brings the index up to the head first.
func TestScanPatientCatchesUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.randomEvents(t, 1000, 20, 3)
		if _, err := IndexPatients(ctx, d, "main"); err != nil {
			t.Fatal(err)
		}
		if err := f.log.Close(ctx); err != nil { // stops the background indexer
			t.Fatal(err)
		}
		f.randomTail(t, 700, 20, 5)
		if mark, head, err := indexLag(ctx, d, "main"); err != nil || mark != 1000 || head != 1700 {
			t.Fatalf("before the query the index covers %d of %d events (%v), want 1000 of 1700", mark, head, err)
		}
		if total := f.compareScans(t, 20); total < 1500 || total > 1600 {
			t.Errorf("the 20 patients' histories hold %d events of 1700", total)
		}
		if mark, _, err := indexLag(ctx, d, "main"); err != nil || mark != 1700 {
			t.Errorf("after the query the index covers %d events (%v), want 1700", mark, err)
		}
	})
}

// randomTail appends n events as randomEvents does, through AppendTx
// only and without a checkpoint (the log may be closed).
func (f *fixture) randomTail(t *testing.T, n, patients int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = testEvent(i)
		evs[i].Patient = fmt.Sprintf("P-%04d", r.IntN(patients))
		evs[i].Time = base.Add(time.Duration(r.IntN(1000)) * time.Minute)
	}
	if err := f.db.ReadWriteTx(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		_, err := f.log.AppendTx(ctx, tx, evs...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestIndexPatients: the catch-up indexes events appended through Append
// and moves the watermark to the head; a second run has nothing to do.
func TestIndexPatients(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.appendN(t, 300) // group commits through Append
		if _, err := IndexPatients(ctx, d, "main"); err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM audit_patients WHERE chain = 'main'`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != 300 {
			t.Errorf("%d index rows for 300 events that each name a patient", rows)
		}
		if mark, head, err := indexLag(ctx, d, "main"); err != nil || mark != 300 || head != 300 {
			t.Errorf("watermark %d, head %d (%v), want 300 and 300", mark, head, err)
		}
		if n, err := IndexPatients(ctx, d, "main"); err != nil || n != 0 {
			t.Errorf("a second catch-up indexed %d events (%v), want 0", n, err)
		}
		got := scanPatient(t, d, PatientQuery{Pseudonym: "P-0003"})
		if len(got) != 23 { // i%13 == 3 for i < 300
			t.Errorf("P-0003 has %d events, want 23", len(got))
		}
	})
}

// TestPatientIndexBackfill writes a log under the schema before the index
// (version 1), upgrades it, and finds every event by patient.
func TestPatientIndexBackfill(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		ctx := context.Background()
		src := newFixture(t, storetest.OpenSQLite(t))
		src.randomEvents(t, 600, 20, 11)
		if err := d.Migrate(ctx, Migrations[:1]); err != nil {
			t.Fatal(err)
		}
		copyTable(t, src.db, d, "audit_events", "chain, idx, event, mac")
		copyTable(t, src.db, d, "audit_heads", "chain, size, frontier")
		copyTable(t, src.db, d, "audit_checkpoints", "chain, size, note, created_at")
		if err := d.Migrate(ctx, Migrations); err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if mark, head, err := indexLag(ctx, d, "main"); err != nil || mark != 600 || head != 600 {
			t.Fatalf("after the backfill the index covers %d of %d events (%v), want 600", mark, head, err)
		}
		for p := range 20 {
			q := PatientQuery{Pseudonym: fmt.Sprintf("P-%04d", p), Limit: 50}
			if got, want := scanPatient(t, d, q), fullScan(t, src.db, q); !slices.Equal(indexes(got), indexes(want)) {
				t.Fatalf("after the backfill %s: %v, want %v", q.Pseudonym, indexes(got), indexes(want))
			}
		}
		vf := *src.vf
		vf.DB, vf.Index = d, true
		if _, err := vf.Verify(ctx); err != nil {
			t.Errorf("verify the backfilled index: %v", err)
		}
	})
}

// TestPatientIndexBackfillSurvivesForeignLeaf: a leaf that is not JSON
// (tampering) gets no index row but does not stop the upgrade.
func TestPatientIndexBackfillSurvivesForeignLeaf(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, Migrations[:1]); err != nil {
			t.Fatal(err)
		}
		for i, leaf := range []string{`{"index":0,"actor":"a","action":"x","outcome":"success","patient":"P-1"}`, "not json \xff", `{"patient":7}`, `[1]`} {
			if _, err := d.Exec(ctx, `INSERT INTO audit_events (chain, idx, event, mac) VALUES ('main', ?, ?, ?)`, i, []byte(leaf), []byte{0}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Migrate(ctx, Migrations); err != nil {
			t.Fatalf("upgrade over foreign leaves: %v", err)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM audit_patients WHERE patient = 'P-1' AND idx = 0 AND block = 0`).Scan(&n); err != nil || n != 1 {
			t.Errorf("the one real leaf's row: %d (%v)", n, err)
		}
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM audit_patients`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d index rows, want 1 (%v)", n, err)
		}
		if err := d.QueryRow(ctx, `SELECT indexed_up_to FROM audit_patient_marks WHERE chain = 'main'`).Scan(&n); err != nil || n != 4 {
			t.Errorf("watermark %d, want 4 (%v)", n, err)
		}
	})
}

func copyTable(t *testing.T, from, to *store.DB, table, cols string) {
	t.Helper()
	ctx := context.Background()
	rows, err := from.Query(ctx, `SELECT `+cols+` FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := strings.Count(cols, ",") + 1
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if _, err := to.Exec(ctx, `INSERT INTO `+table+` (`+cols+`) VALUES `+store.Placeholders(1, n), vals...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIndexCheckFindsTampering: each change an intruder could make to the
// index to hide a read from a patient's history, or to show another
// patient's event, is found by Verify with Index and named by event.
func TestIndexCheckFindsTampering(t *testing.T) {
	cases := []struct {
		name string
		sql  string
		bad  int64
		want string
	}{
		{"deleted", `DELETE FROM audit_patients WHERE idx = 40`, 40, "no index row"},
		{"other patient", `UPDATE audit_patients SET patient = 'P-9999' WHERE idx = 41`, 41, "for event 41, which names patient P-"},
		{"added", `INSERT INTO audit_patients (chain, block, patient, idx) SELECT chain, block, 'P-0009', idx FROM audit_patients WHERE idx = 42`, 42, "index row names patient P-0009"},
		{"moved block", `UPDATE audit_patients SET block = 7 WHERE idx = 43`, 43, ""},
		{"missing event", `INSERT INTO audit_patients (chain, block, patient, idx) VALUES ('main', 3, 'P-0001', 1000)`, 1000, "does not exist"},
		{"watermark ahead", `UPDATE audit_patient_marks SET indexed_up_to = 500`, 100, "says 500 events are indexed but 100 are stored"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, d *store.DB) {
				ctx := context.Background()
				f := newFixture(t, d)
				f.appendN(t, 100)
				if _, err := IndexPatients(ctx, d, "main"); err != nil {
					t.Fatal(err)
				}
				if _, err := d.Exec(ctx, c.sql); err != nil {
					t.Fatal(err)
				}
				if _, err := f.vf.Verify(ctx); err != nil {
					t.Errorf("the default verify checks the tree only, and it is intact: %v", err)
				}
				vf := *f.vf
				vf.Index = true
				v, err := vf.Verify(ctx)
				if !errors.Is(err, ErrTampered) || v.OK || v.FirstBad != c.bad || !strings.Contains(v.Problem, c.want) {
					t.Fatalf("verify with the index: %v, first bad %d, problem %q; want event %d, %q", err, v.FirstBad, v.Problem, c.bad, c.want)
				}
			})
		})
	}
}

// TestScanPatientIgnoresForeignRows: an index row pointing at another
// patient's event shows nothing of it.
func TestScanPatientIgnoresForeignRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		f.appendN(t, 60)
		if _, err := IndexPatients(ctx, d, "main"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `INSERT INTO audit_patients (chain, block, patient, idx) SELECT chain, block, 'P-0001', idx FROM audit_patients WHERE patient = 'P-0002'`); err != nil {
			t.Fatal(err)
		}
		for _, e := range scanPatient(t, d, PatientQuery{Pseudonym: "P-0001"}) {
			if e.Patient != "P-0001" {
				t.Fatalf("P-0001's history shows event %d of %s", e.Index, e.Patient)
			}
		}
		if got := scanPatient(t, d, PatientQuery{Pseudonym: "P-0001"}); len(got) != 5 { // i%13 == 1 for i < 60
			t.Errorf("P-0001 has %d events, want 5", len(got))
		}
	})
}

// TestLeafPatient: the quick read of a leaf's pseudonym agrees with
// decoding it, whatever the other fields hold.
func TestLeafPatient(t *testing.T) {
	withDecision := testEvent(1)
	withDecision.Patient = ""
	withDecision.Decision = []byte(`{"allow":true,"patient":"P-0007"}`)
	tricky := testEvent(2)
	tricky.Actor, tricky.Reason = `staff ,"patient":"P-0666"`, `,"outcome":"x"`
	tricky.Patient = `P-"quoted"-é`
	plain := testEvent(3)
	plain.Patient = "P-0001"
	foreign := []byte(`{"patient":"P-0002","actor":"a"}`)
	for _, e := range []Event{withDecision, tricky, plain, testEvent(4)} {
		body, err := encodeBody(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := leafPatient(body); got != e.Patient {
			t.Errorf("leaf %s: patient %q, want %q", body, got, e.Patient)
		}
	}
	if got := leafPatient(foreign); got != "P-0002" {
		t.Errorf("a leaf of another shape: patient %q, want P-0002", got)
	}
	if got := leafPatient([]byte("not json")); got != "" {
		t.Errorf("a leaf that is not JSON: patient %q", got)
	}
}
