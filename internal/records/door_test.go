package records

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// allowList is a test decider: it allows exactly the (role, action, class)
// triples it holds. The real policy is tested in package access and with
// the door in package hospital.
type allowList map[[3]string]bool

func (a allowList) Decide(_ context.Context, q Question) Decision {
	if a[[3]string{q.Who.Role, q.Action, q.Class}] {
		return Decision{Allow: true, Policies: []string{"test-allow"}, Reasons: []string{"allowed by the test"}}
	}
	return Decision{Reasons: []string{"not on the test's allow list"}}
}

type fixture struct {
	db     *store.DB
	door   *Door
	alerts *alerts.Inbox
	clock  *testClock
	log    *audit.Log
	vf     *audit.Verifier
	clerk  identity.Principal
	doc    identity.Principal
	nurse  identity.Principal
}

func newFixture(t *testing.T, db *store.DB) *fixture { return newFixtureTB(t, db) }

func newFixtureTB(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, keys.Migrations, audit.Migrations, identity.Migrations, Migrations, alerts.Migrations); err != nil {
		t.Fatal(err)
	}
	p, err := keys.CreateKeyFile(filepath.Join(t.TempDir(), "kek.json"), []byte("test passphrase"), keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(db, p)
	seed, mac, ps, ix := key32(), key32(), key32(), key32()
	signer, _ := audit.NewSigner("medsec-audit-test", seed)
	cp := filepath.Join(t.TempDir(), "checkpoints")
	log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: mac, CheckpointFile: cp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(ctx) })
	dec := allowList{
		{"administrative", ActionWrite, ClassDemographics}:     true,
		{"physician", ActionRead, ClassDemographics}:           true,
		{"physician", ActionWrite, ClassObservation}:           true,
		{"physician", ActionRead, ClassObservation}:            true,
		{"physician", ActionSearch, ClassDemographics}:         true,
		{"security_officer", ActionDestroy, ClassDemographics}: true,
	}
	clock := &testClock{t: time.Now()}
	inbox := alerts.New(db, log)
	inbox.Now = clock.Now
	door, err := New(Config{DB: db, Keys: kr, Audit: log, Decider: dec, Alerts: inbox, PseudonymKey: ps, IndexKey: ix, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	dir := identity.NewDirectory(db)
	dir.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	vkey, _ := signer.VerifierKey()
	nv, _ := noteVerifier(vkey)
	return &fixture{db: db, door: door, log: log, alerts: inbox, clock: clock,
		vf:    &audit.Verifier{DB: db, Chain: "main", NoteVerifier: nv, MACKey: mac, CheckpointFile: cp},
		clerk: staff(t, dir, "clerk", "administrative"), doc: staff(t, dir, "doc", "physician"), nurse: staff(t, dir, "nurse", "nurse")}
}

func key32() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func staff(t testing.TB, d *identity.Directory, name, role string) identity.Principal {
	t.Helper()
	pw := "a long test password for " + strings.Repeat("x", len(name))
	if _, err := d.Create(context.Background(), identity.NewStaff{Username: name, DisplayName: name, Role: role, Password: pw}); err != nil {
		t.Fatal(err)
	}
	p, err := d.Authenticate(context.Background(), name, pw, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var alice = Patient{Name: "김민수", RRN: "900101-1234568", Phone: "010-1234-5678", BirthDate: "1990-01-01", Sex: "male",
	Address: "서울특별시 강남구 테헤란로 1", MRN: "MRN-000001", Department: "internal_medicine", Ward: "5A"}

func (f *fixture) register(t *testing.T, p Patient) Patient { return f.registerTB(t, p) }

func (f *fixture) registerTB(t testing.TB, p Patient) Patient {
	t.Helper()
	got, err := f.door.RegisterPatient(context.Background(), Request{Who: f.clerk, Purpose: "TREAT"}, p)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) events(t *testing.T) []audit.Event {
	t.Helper()
	var out []audit.Event
	if err := audit.Scan(context.Background(), f.db, "main", 0, 0, func(e audit.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRegisterAndRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		reg := f.register(t, alice)
		got, err := f.door.Patient(context.Background(), Request{Who: f.doc, Purpose: "TREAT"}, reg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != alice.Name || got.RRN != alice.RRN || got.Phone != alice.Phone || got.Address != alice.Address || got.MRN != alice.MRN {
			t.Errorf("read back %+v, want %+v", got, alice)
		}
		evs := f.events(t)
		last := evs[len(evs)-1]
		if last.Action != "demographics.read" || last.Actor != f.doc.ID || last.Patient != reg.Pseudonym || last.Outcome != audit.Success {
			t.Errorf("last audit event %+v, want the physician's read of %s", last, reg.Pseudonym)
		}
		for _, e := range evs {
			raw := e.Reason + e.Resource + e.Patient + string(e.Decision)
			if strings.Contains(raw, alice.Name) || strings.Contains(raw, "900101") || strings.Contains(raw, reg.ID) {
				t.Errorf("audit event %d holds PHI or the internal id: %+v", e.Index, e)
			}
		}
	})
}

func TestNoPlaintextInTables(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		reg := f.register(t, alice)
		_, err := f.door.AddRecords(context.Background(), Request{Who: f.doc, Purpose: "TREAT"}, reg.ID,
			[]Record{{Class: ClassObservation, Code: "8867-4", Payload: []byte(`{"note":"김민수 heart rate 72"}`)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"phi_patients", "phi_fields", "phi_index", "phi_records", "audit_events"} {
			rows, err := db.Query(context.Background(), "SELECT * FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				rows.Scan(ptrs...)
				for i, v := range vals {
					var b []byte
					switch x := v.(type) {
					case []byte:
						b = x
					case string:
						b = []byte(x)
					}
					for _, needle := range []string{alice.Name, "900101", "1234568", "010-1234", "12345678", "테헤란로", "heart rate"} {
						if bytes.Contains(b, []byte(needle)) {
							t.Errorf("%s.%s holds %q in plaintext", table, cols[i], needle)
						}
					}
				}
			}
			rows.Close()
		}
	})
}

func TestCiphertextMovedToAnotherPatientFails(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	a := f.register(t, alice)
	bob := alice
	bob.Name, bob.RRN, bob.Phone = "이서연", "950505-2345678", "010-9999-0000"
	b := f.register(t, bob)
	if _, err := f.db.Exec(context.Background(), `UPDATE phi_fields SET sealed = (SELECT sealed FROM phi_fields WHERE patient_id = ? AND field = 'name') WHERE patient_id = ? AND field = 'name'`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	_, err := f.door.Patient(context.Background(), Request{Who: f.doc, Purpose: "TREAT"}, b.ID)
	if !errors.Is(err, keys.ErrTampered) {
		t.Errorf("reading a patient whose name was copied from another: got %v, want ErrTampered", err)
	}
}

func TestDeniedIsAuditedAndReturnsNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		reg := f.register(t, alice)
		got, err := f.door.Patient(context.Background(), Request{Who: f.nurse, Purpose: "TREAT"}, reg.ID)
		var de *DeniedError
		if !errors.As(err, &de) || !errors.Is(err, ErrDenied) {
			t.Fatalf("nurse read: got %v, want *DeniedError", err)
		}
		if got.Name != "" || got.RRN != "" {
			t.Errorf("a denied read returned data: %+v", got)
		}
		evs := f.events(t)
		last := evs[len(evs)-1]
		if last.Outcome != audit.Denied || last.Actor != f.nurse.ID || last.Reason == "" {
			t.Errorf("last event %+v, want the nurse's denial with a reason", last)
		}
	})
}

func TestUnauthenticatedRefused(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	reg := f.register(t, alice)
	forged := identity.Principal{Staff: identity.Staff{ID: "st_x", Role: "physician"}}
	if _, err := f.door.Patient(context.Background(), Request{Who: forged, Purpose: "TREAT"}, reg.ID); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a principal made outside identity: got %v, want ErrUnauthenticated", err)
	}
}

func TestAuditBeforeData(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	reg := f.register(t, alice)
	f.log.Close(context.Background())
	got, err := f.door.Patient(context.Background(), Request{Who: f.doc, Purpose: "TREAT"}, reg.ID)
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("read with the audit log down: got %v, want ErrUnavailable", err)
	}
	if got.Name != "" {
		t.Error("data left although its audit event could not be written")
	}
}

func TestDestroy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		reg := f.register(t, alice)
		doc := Request{Who: f.doc, Purpose: "TREAT"}
		recIDs, err := f.door.AddRecords(ctx, doc, reg.ID, []Record{{Class: ClassObservation, Code: "8867-4", Payload: []byte("72")}})
		if err != nil {
			t.Fatal(err)
		}
		officer := staff(t, identity.NewDirectory(db), "officer", "security_officer")
		if err := f.door.DestroyPatient(ctx, Request{Who: f.doc, Purpose: "TREAT"}, reg.ID, "REQUEST x"); !errors.Is(err, ErrDenied) {
			t.Errorf("a physician destroying: got %v, want ErrDenied", err)
		}
		if err := f.door.DestroyPatient(ctx, Request{Who: officer, Purpose: "HOPERAT"}, reg.ID, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("destruction without a basis: got %v, want ErrInvalid", err)
		}
		if err := f.door.DestroyPatient(ctx, Request{Who: officer, Purpose: "HOPERAT"}, reg.ID, "REQUEST erasure #9"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.door.Record(ctx, doc, recIDs[0]); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("a record read by id after destruction: got %v, want ErrDestroyed", err)
		}
		for _, q := range []string{`SELECT COUNT(*) FROM phi_index WHERE patient_id = ?`, `SELECT COUNT(*) FROM phi_fields WHERE patient_id = ?`,
			`SELECT COUNT(*) FROM phi_records WHERE patient_id = ? AND (code_digest IS NOT NULL OR LENGTH(payload) > 0)`} {
			var n int
			if err := db.QueryRow(ctx, q, reg.ID).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d rows left (%v), want none", q, n, err)
			}
		}
		_, err = f.door.Patient(ctx, doc, reg.ID)
		if !errors.Is(err, keys.ErrDestroyed) || !strings.Contains(err.Error(), "destroyed on") || !strings.Contains(err.Error(), "REQUEST erasure #9") ||
			!strings.Contains(err.Error(), reg.Pseudonym) || strings.Contains(err.Error(), reg.ID) {
			t.Errorf("read after destruction: got %v, want the destroyed error naming the pseudonym and basis", err)
		}
		if _, err := f.door.Records(ctx, doc, reg.ID, Filter{Class: ClassObservation}); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("records after destruction: got %v, want ErrDestroyed", err)
		}
		// The registration desk gets the clear error, not a portal token
		// that then fails to authenticate.
		if _, _, err := f.door.IssuePortalAccess(ctx, Request{Who: f.clerk, Purpose: "TREAT"}, reg.ID, time.Minute); !errors.Is(err, keys.ErrDestroyed) ||
			!strings.Contains(err.Error(), "REQUEST erasure #9") {
			t.Errorf("portal access after destruction: got %v, want the destroyed error", err)
		}
		ids, err := f.door.FindPatient(ctx, doc, "rrn", alice.RRN)
		if err != nil || len(ids) != 0 {
			t.Errorf("find by RRN after destruction: %v, %v; want nothing", ids, err)
		}
		if err := f.door.DestroyPatient(ctx, Request{Who: officer, Purpose: "HOPERAT"}, reg.ID, "REQUEST again"); !errors.Is(err, keys.ErrDestroyed) {
			t.Errorf("second destruction: got %v, want ErrDestroyed", err)
		}
		f.log.Checkpoint(ctx)
		if v, err := f.vf.Verify(ctx); err != nil || !v.OK {
			t.Errorf("audit after destruction: %v %+v", err, v)
		}
	})
}

func TestRecordsSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		reg := f.register(t, alice)
		doc := Request{Who: f.doc, Purpose: "TREAT"}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var recs []Record
		for i := range 200 {
			code := "8867-4"
			if i%2 == 1 {
				code = "8480-6"
			}
			recs = append(recs, Record{Class: ClassObservation, Code: code, Effective: t0.Add(time.Duration(i) * time.Hour), Payload: []byte{byte(i)}})
		}
		ids, err := f.door.AddRecords(ctx, doc, reg.ID, recs)
		if err != nil || len(ids) != 200 {
			t.Fatalf("add: %d ids, %v", len(ids), err)
		}
		got, err := f.door.Records(ctx, doc, reg.ID, Filter{Class: ClassObservation, Code: "8480-6", From: t0.Add(10 * time.Hour), To: t0.Add(20 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		var hours []int
		for _, r := range got {
			hours = append(hours, int(r.Effective.Sub(t0).Hours()))
			if r.Code != "8480-6" {
				t.Errorf("got code %s", r.Code)
			}
		}
		if want := []int{11, 13, 15, 17, 19}; !slices.Equal(hours, want) {
			t.Errorf("got hours %v, want %v", hours, want)
		}
		one, err := f.door.Record(ctx, doc, ids[7])
		if err != nil || one.Payload[0] != 7 {
			t.Errorf("record by id: %+v, %v", one, err)
		}
		if _, err := f.door.Record(ctx, doc, "rec_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown record: got %v, want ErrNotFound", err)
		}
		if _, err := f.door.Patient(ctx, doc, "pt_nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown patient: got %v, want ErrNotFound", err)
		}
		if _, err := f.door.AddRecords(ctx, doc, reg.ID, []Record{{Class: ClassObservation}, {Class: ClassNote}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("mixed batch: got %v, want ErrInvalid", err)
		}
	})
}

// TestAddRecordsBulk stores several patients' batches in one transaction:
// each is decided and audited on its own, and a refused one does not hold
// up the others.
func TestAddRecordsBulk(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		a := f.register(t, alice)
		bob := alice
		bob.Name, bob.RRN, bob.Phone, bob.MRN = "이서연", "950505-2345678", "010-9999-0000", "MRN-000002"
		b := f.register(t, bob)
		doc := Request{Who: f.doc, Purpose: "TREAT"}
		nurse := Request{Who: f.nurse, Purpose: "TREAT"}
		obs := func(n int) []Record {
			out := make([]Record, n)
			for i := range out {
				out[i] = Record{Class: ClassObservation, Code: "8867-4", Payload: []byte{byte(i)}}
			}
			return out
		}
		before := len(f.events(t))
		res := f.door.AddRecordsBulk(ctx, []Batch{
			{Request: doc, PatientID: a.ID, Records: obs(3)},
			{Request: nurse, PatientID: b.ID, Records: obs(2)}, // not on the allow list
			{Request: doc, PatientID: b.ID, Records: obs(4)},
			{Request: doc, PatientID: "pt_nope", Records: obs(1)},
		})
		if len(res[0].IDs) != 3 || res[0].Err != nil || len(res[2].IDs) != 4 || res[2].Err != nil {
			t.Errorf("allowed batches: %+v, %+v", res[0], res[2])
		}
		if !errors.Is(res[1].Err, ErrDenied) || !errors.Is(res[3].Err, ErrNotFound) {
			t.Errorf("refused batches: %v, %v", res[1].Err, res[3].Err)
		}
		evs := f.events(t)[before:]
		var writes, denials int
		for _, e := range evs {
			switch e.Outcome {
			case audit.Success:
				writes++
			case audit.Denied:
				denials++
			}
		}
		if writes != 2 || denials != 1 {
			t.Errorf("got %d write events and %d denials, want one per stored batch and one for the denial", writes, denials)
		}
		got, err := f.door.Records(ctx, doc, b.ID, Filter{Class: ClassObservation})
		if err != nil || len(got) != 4 {
			t.Errorf("patient b holds %d observations (%v), want 4", len(got), err)
		}
	})
}

// TestLabelsAreDigests checks that sensitivity labels reach the policy but
// the database file tells neither which labels a patient has nor how many.
func TestLabelsAreDigests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		hiv := alice
		hiv.Labels = []string{"hiv"}
		a := f.register(t, hiv)
		b := f.register(t, hiv)
		none := f.register(t, alice)
		facts, err := f.door.Facts(ctx, a.ID)
		if err != nil || !slices.Equal(facts.Labels, []string{"hiv"}) {
			t.Fatalf("facts of a labelled patient: %v, %v", facts, err)
		}
		if facts, _ := f.door.Facts(ctx, none.ID); len(facts.Labels) != 0 {
			t.Errorf("an unlabelled patient has labels %v", facts.Labels)
		}
		stored := map[string]string{}
		for _, id := range []string{a.ID, b.ID, none.ID} {
			var s string
			db.QueryRow(ctx, `SELECT labels FROM phi_patients WHERE id = ?`, id).Scan(&s)
			stored[id] = s
			if strings.Contains(s, "hiv") || strings.Count(s, ",") != len(SensitivityLabels)-1 {
				t.Errorf("stored labels %q: want %d opaque slots", s, len(SensitivityLabels))
			}
		}
		if stored[a.ID] == stored[b.ID] {
			t.Error("two patients with the same label store the same digests")
		}
		bad := alice
		bad.Labels = []string{"celebrity"}
		if _, err := f.door.RegisterPatient(ctx, Request{Who: f.clerk, Purpose: "TREAT"}, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("an unknown label: got %v, want ErrInvalid", err)
		}
	})
}
