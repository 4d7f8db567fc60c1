package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

type fixture struct {
	db     *store.DB
	log    *Log
	vf     *Verifier
	cpFile string
}

func newFixture(t *testing.T, db *store.DB) *fixture { return newFixtureTB(t, db, 50) }

// newFixtureTB opens a log that checkpoints every `every` events.
func newFixtureTB(t testing.TB, db *store.DB, every uint64) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, Migrations); err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	rand.Read(seed)
	signer, err := NewSigner("medsec-audit-test", seed)
	if err != nil {
		t.Fatal(err)
	}
	mac := make([]byte, 32)
	rand.Read(mac)
	cpFile := filepath.Join(t.TempDir(), "checkpoints")
	log, err := Open(ctx, db, Config{Signer: signer, MACKey: mac, CheckpointFile: cpFile, Every: every, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(ctx) })
	vkey, _ := signer.VerifierKey()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, log: log, cpFile: cpFile,
		vf: &Verifier{DB: db, Chain: "main", NoteVerifier: v, MACKey: mac, CheckpointFile: cpFile}}
}

func testEvent(i int) Event {
	return Event{Actor: fmt.Sprintf("staff-%d", i%7), Role: "physician", Action: "patient.read",
		Purpose: "TREAT", Patient: fmt.Sprintf("P-%04d", i%13), Resource: fmt.Sprintf("Observation/o%d", i),
		Outcome: Success, Source: "127.0.0.1", Reason: "care team"}
}

// appendN appends n events concurrently and checkpoints.
func (f *fixture) appendN(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.log.Append(ctx, testEvent(i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := f.log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAppendVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.appendN(t, 300)
		v, err := f.vf.Verify(context.Background())
		if err != nil {
			t.Fatalf("verify of an untouched log: %v", err)
		}
		if !v.OK || v.Events != 300 || v.Checkpoint != 300 || v.Checkpoints < 2 {
			t.Errorf("got %+v, want ok with 300 events and several checkpoints", v)
		}
	})
}

func TestAppendIndexesAreDense(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		seen := map[uint64]bool{}
		for i := range 20 {
			idx, err := f.log.Append(ctx, testEvent(i))
			if err != nil {
				t.Fatal(err)
			}
			seen[idx] = true
		}
		err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			idx, err := f.log.AppendTx(ctx, tx, testEvent(20), testEvent(21))
			if err == nil && (idx[0] != 20 || idx[1] != 21) {
				t.Errorf("AppendTx got indexes %v, want [20 21]", idx)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(20) {
			if !seen[i] {
				t.Errorf("index %d was never returned", i)
			}
		}
	})
}

func TestAppendTxRollsBackWithData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		f.appendN(t, 5)
		boom := errors.New("data write failed")
		err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			if _, err := f.log.AppendTx(ctx, tx, testEvent(99)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		f.appendN(t, 5)
		if v, err := f.vf.Verify(ctx); err != nil || v.Events != 10 {
			t.Errorf("after a rolled-back AppendTx: got %+v, %v; want 10 intact events", v, err)
		}
	})
}

func TestRejectsIncompleteEvent(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	if _, err := f.log.Append(context.Background(), Event{Actor: "x"}); err == nil {
		t.Error("an event without action and outcome was accepted")
	}
}

type tamperCase struct {
	name    string
	tamper  func(t *testing.T, f *fixture)
	wantBad int64
}

// TestTamper changes the stored log behind medsec's back, with SQL, and
// checks that Verify names the first bad index.
func TestTamper(t *testing.T) {
	const n = 120
	cases := []tamperCase{
		{"change", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_events SET event = ? WHERE idx = 37`, f.leaf(t, 37, "patient.read", "patient.list"))
		}, 37},
		{"change and recompute nothing else", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_events SET event = ? WHERE idx = 0`, f.leaf(t, 0, `"outcome":"success"`, `"outcome":"denied"`))
		}, 0},
		{"delete", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_events WHERE idx = 64`)
		}, 64},
		{"delete and renumber", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_events WHERE idx = 64`)
			for i := 65; i < n; i++ {
				f.exec(t, `UPDATE audit_events SET idx = ? WHERE idx = ?`, i-1, i)
			}
			f.exec(t, `UPDATE audit_heads SET size = ?`, n-1)
		}, 64},
		{"insert", func(t *testing.T, f *fixture) {
			for i := n - 1; i >= 50; i-- {
				f.exec(t, `UPDATE audit_events SET idx = ? WHERE idx = ?`, i+1, i)
			}
			f.exec(t, `INSERT INTO audit_events (chain, idx, event, mac) SELECT chain, 50, event, mac FROM audit_events WHERE idx = 10`)
			f.exec(t, `UPDATE audit_heads SET size = ?`, n+1)
		}, 50},
		{"append forged", func(t *testing.T, f *fixture) {
			f.exec(t, `INSERT INTO audit_events (chain, idx, event, mac) SELECT chain, ?, event, mac FROM audit_events WHERE idx = 3`, n)
			f.exec(t, `UPDATE audit_heads SET size = ?`, n+1)
		}, n},
		{"reorder", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_events SET idx = -1 WHERE idx = 20`)
			f.exec(t, `UPDATE audit_events SET idx = 20 WHERE idx = 90`)
			f.exec(t, `UPDATE audit_events SET idx = 90 WHERE idx = -1`)
		}, 20},
		{"truncate", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_events WHERE idx >= 100`)
			f.exec(t, `UPDATE audit_heads SET size = 100`)
		}, 100},
		{"truncate and delete the database checkpoints", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_events WHERE idx >= 100`)
			f.exec(t, `DELETE FROM audit_checkpoints WHERE size > 100`)
			f.exec(t, `UPDATE audit_heads SET size = 100`)
		}, 100},
		{"wipe everything in the database", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_events`)
			f.exec(t, `DELETE FROM audit_checkpoints`)
			f.exec(t, `UPDATE audit_heads SET size = 0, frontier = ?`, []byte{})
		}, 0},
	}
	for _, chunk := range []uint64{verifyChunkSize, 16} {
		t.Run(fmt.Sprintf("chunks of %d", chunk), func(t *testing.T) {
			defer func(old uint64) { verifyChunkSize = old }(verifyChunkSize)
			verifyChunkSize = chunk
			testTamper(t, n, cases)
		})
	}
}

// testTamper runs the tamper cases on every backend.
func testTamper(t *testing.T, n int, cases []tamperCase) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, reopen(t, db))
				f.appendN(t, n)
				if _, err := f.vf.Verify(context.Background()); err != nil {
					t.Fatalf("verify before %s: %v", tc.name, err)
				}
				tc.tamper(t, f)
				v, err := f.vf.Verify(context.Background())
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("verify after %s: got %v (%+v), want ErrTampered", tc.name, err, v)
				}
				if v.FirstBad != tc.wantBad {
					t.Errorf("got first bad index %d (%s), want %d", v.FirstBad, v.Problem, tc.wantBad)
				}
				if v.OK || !strings.Contains(v.Summary(), fmt.Sprint(tc.wantBad)) {
					t.Errorf("summary %q does not name index %d", v.Summary(), tc.wantBad)
				}
			})
		}
	})
}

// reopen gives each tamper case a fresh database of the same backend.
func reopen(t *testing.T, db *store.DB) *store.DB {
	if db.Dialect() == store.Postgres {
		return storetest.OpenPostgres(t)
	}
	return storetest.OpenSQLite(t)
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.db.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) leaf(t *testing.T, idx int, old, repl string) []byte {
	t.Helper()
	var ev []byte
	if err := f.db.QueryRow(context.Background(), `SELECT event FROM audit_events WHERE idx = ?`, idx).Scan(&ev); err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(ev, []byte(old), []byte(repl), 1)
	if bytes.Equal(changed, ev) {
		t.Fatalf("event %d has no %q to change", idx, old)
	}
	return changed
}

func TestCheckpointFileTampered(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.appendN(t, 10)
	f.vf.CheckpointFile = filepath.Join(t.TempDir(), "gone")
	if _, err := f.vf.Verify(context.Background()); !errors.Is(err, ErrTampered) {
		t.Errorf("verify without the checkpoint file: got %v, want ErrTampered", err)
	}
}

func TestForgedCheckpointSignature(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.appendN(t, 10)
	f.exec(t, `UPDATE audit_checkpoints SET note = replace(note, '10
', '11
') WHERE size = 10`)
	if _, err := f.vf.Verify(context.Background()); !errors.Is(err, ErrTampered) {
		t.Errorf("verify with an altered checkpoint: got %v, want ErrTampered", err)
	}
}

func TestInclusionProof(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.appendN(t, 77)
		for _, idx := range []uint64{0, 1, 38, 63, 64, 76} {
			p, err := f.vf.Prove(context.Background(), idx)
			if err != nil {
				t.Fatalf("prove %d: %v", idx, err)
			}
			// Round-trip through JSON, as a third party receives it.
			raw, _ := json.Marshal(p)
			var got InclusionProof
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if err := CheckProof(got, f.vf.NoteVerifier); err != nil {
				t.Errorf("proof of %d does not check: %v", idx, err)
			}
			if got.Event.Index != idx {
				t.Errorf("proof of %d carries event %d", idx, got.Event.Index)
			}
			got.Leaf = bytes.Replace(got.Leaf, []byte("patient.read"), []byte("patient.list"), 1)
			if err := CheckProof(got, f.vf.NoteVerifier); err == nil {
				t.Errorf("a proof with an altered event %d still checks", idx)
			}
		}
		if _, err := f.vf.Prove(context.Background(), 500); err == nil {
			t.Error("proof of an event beyond the log was given")
		}
	})
}

func TestExport(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.appendN(t, 5)
	denied := testEvent(7)
	denied.Outcome, denied.Reason = Denied, "outside care relationship"
	if _, err := f.log.Append(context.Background(), denied); err != nil {
		t.Fatal(err)
	}
	var fhir bytes.Buffer
	n, err := Export(context.Background(), f.db, "main", FormatFHIR, &fhir)
	if err != nil || n != 6 {
		t.Fatalf("export fhir: %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSpace(fhir.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[5]), &last); err != nil {
		t.Fatal(err)
	}
	if last["resourceType"] != "AuditEvent" || last["outcome"] != "4" || last["outcomeDesc"] != "outside care relationship" {
		t.Errorf("got FHIR %v, want a denied AuditEvent with its reason", last)
	}
	var sys bytes.Buffer
	if _, err := Export(context.Background(), f.db, "main", FormatSyslog, &sys); err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(sys.String(), "\n", 2)[0]
	if !strings.HasPrefix(first, "<85>1 ") || !strings.Contains(first, `[medsec@32473 index="0"`) {
		t.Errorf("got syslog line %q, want RFC 5424 with structured data", first)
	}
	if _, err := Export(context.Background(), f.db, "main", "xml", &sys); err == nil {
		t.Error("an unknown export format was accepted")
	}
}

func TestCloseRefusesAppends(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.appendN(t, 3)
	if err := f.log.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.log.Append(context.Background(), testEvent(1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("append after close: got %v, want ErrUnavailable", err)
	}
}

func TestProofEventMustMatchLeaf(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.appendN(t, 5)
	p, err := f.vf.Prove(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	p.Event.Actor = "someone-else"
	if err := CheckProof(p, f.vf.NoteVerifier); err == nil {
		t.Error("a proof whose readable event was altered still checks")
	}
}

func TestHeadAndLatestCheckpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.appendN(t, 12)
		ctx := context.Background()
		if n, err := Head(ctx, db, "main"); err != nil || n != 12 {
			t.Errorf("head: %d, %v; want 12", n, err)
		}
		size, at, err := LatestCheckpoint(ctx, db, "main")
		if err != nil || size != 12 || time.Since(at) > time.Minute {
			t.Errorf("latest checkpoint: %d at %v, %v", size, at, err)
		}
		if n, _ := Head(ctx, db, "other"); n != 0 {
			t.Errorf("an unknown chain has %d events", n)
		}
	})
}

// TestDecodeLeafRefusesForeign: bytes medsec never writes as an event are
// an error, not an empty event in an export or a search.
func TestDecodeLeafRefusesForeign(t *testing.T) {
	for _, leaf := range []string{`null`, `{}`, `{"index":3}`, `{"index":3,"actor":"x","action":"a"}`} {
		if e, err := DecodeLeaf([]byte(leaf)); !errors.Is(err, ErrTampered) {
			t.Errorf("DecodeLeaf(%s) = %+v, %v; want ErrTampered", leaf, e, err)
		}
	}
	if _, err := DecodeLeaf([]byte(`{"index":3,"actor":"x","action":"a","outcome":"success"}`)); err != nil {
		t.Errorf("a complete event: %v", err)
	}
}
