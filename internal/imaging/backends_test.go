package imaging_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// allowAll stands in for the policy here: this test is about the intake's
// SQL on each backend; the shipped policy is exercised by the tests on a
// whole installation.
type allowAll struct{}

func (allowAll) Decide(context.Context, records.Question) records.Decision {
	return records.Decision{Allow: true, Reasons: []string{"test"}}
}

func key32(t testing.TB) []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// assemble builds the intake's parts on db by hand.
func assemble(t *testing.T, db *store.DB) (*imaging.Intake, *records.Door, *identity.Directory) {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, keys.Migrations, audit.Migrations, identity.Migrations, records.Migrations, alerts.Migrations); err != nil {
		t.Fatal(err)
	}
	p, err := keys.CreateKeyFile(filepath.Join(t.TempDir(), "kek.json"), []byte("backend test"), keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(db, p)
	signer, _ := audit.NewSigner("medsec-imaging-test", key32(t))
	log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: key32(t), CheckpointFile: filepath.Join(t.TempDir(), "cp")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(context.Background()) })
	inbox := alerts.New(db, log)
	door, err := records.New(records.Config{DB: db, Keys: kr, Audit: log, Decider: allowAll{}, Alerts: inbox, PseudonymKey: key32(t), IndexKey: key32(t)})
	if err != nil {
		t.Fatal(err)
	}
	dir := identity.NewDirectory(db)
	dir.Audit, dir.Keys, dir.HashParams = log, kr, identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	in, err := imaging.New(ctx, imaging.Config{DB: db, Keys: kr, Audit: log, Door: door, Alerts: inbox, Scan: guard.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	return in, door, dir
}

// officer signs in a security officer with a TOTP second factor.
func officer(t *testing.T, dir *identity.Directory) identity.Principal {
	t.Helper()
	ctx := context.Background()
	const pw = "a long backend test password"
	if _, err := dir.Create(ctx, identity.NewStaff{Username: "officer", DisplayName: "Officer", Role: identity.RoleSecurityOfficer, Password: pw}); err != nil {
		t.Fatal(err)
	}
	who, err := dir.Authenticate(ctx, "officer", pw, "test")
	if err != nil {
		t.Fatal(err)
	}
	enr, err := dir.EnrolTOTP(ctx, who, who.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := totp.GenerateCode(enr.Secret, now)
	if err := dir.ConfirmTOTP(ctx, who, who.ID, code); err != nil {
		t.Fatal(err)
	}
	next, _ := totp.GenerateCode(enr.Secret, now.Add(30*time.Second))
	_, token, err := dir.Login(ctx, identity.LoginRequest{Username: "officer", Password: pw, TOTP: next, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dir.Sessions.Authenticate(ctx, token, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIntakeOnEveryBackend runs an import, the quarantine list, a release
// and a deletion on SQLite and, when MEDSEC_TEST_POSTGRES is set,
// PostgreSQL.
func TestIntakeOnEveryBackend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in, door, dir := assemble(t, db)
		who := identity.System("import")
		pt, err := door.RegisterPatient(ctx, records.Request{Who: who, Purpose: "TREAT"}, records.Patient{Name: "김민수", MRN: testMRN})
		if err != nil {
			t.Fatal(err)
		}
		cd := newCD(t)
		rep, err := in.Import(ctx, imaging.Request{Paths: []string{cd.root}, Origin: "CD"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Stored != 5 || rep.Quarantined != 3 {
			t.Fatalf("stored %d, quarantined %d; want 5 and 3", rep.Stored, rep.Quarantined)
		}
		off := officer(t, dir)
		if _, err := in.Quarantined(ctx, identity.Principal{}, imaging.Filter{}); !errors.Is(err, imaging.ErrNotOfficer) {
			t.Errorf("list without sign-in: got %v, want ErrNotOfficer", err)
		}
		items, err := in.Quarantined(ctx, off, imaging.Filter{State: imaging.StateHeld, Limit: 10})
		if err != nil || len(items) != 3 || !items[0].Kept {
			t.Fatalf("held: %+v, %v", items, err)
		}
		var autorun, poly string
		for _, it := range items {
			switch filepath.Base(it.Name) {
			case "AUTORUN.INF":
				autorun = it.ID
			case "IM0001":
				if it.Patient == pt.Pseudonym {
					poly = it.ID
				}
			}
		}
		var out bytes.Buffer
		if _, err := in.Release(ctx, imaging.Decision{Who: off, Reason: "copy for the report", Out: &out}, autorun); err != nil || out.Len() == 0 {
			t.Fatalf("release: %v (%d bytes)", err, out.Len())
		}
		it, err := in.Delete(ctx, imaging.Decision{Who: off, Reason: "closed"}, autorun)
		if err != nil || it.State != imaging.StateDeleted || it.Kept {
			t.Fatalf("delete: %+v, %v", it, err)
		}
		if left, _ := in.Quarantined(ctx, off, imaging.Filter{State: imaging.StateHeld}); len(left) != 2 {
			t.Errorf("%d held after one release and deletion, want 2", len(left))
		}
		checkErasure(t, in, pt, poly)
	})
}

// checkErasure erases the patient's quarantined files as the lifecycle
// engine does and checks the data map before and after.
func checkErasure(t *testing.T, in *imaging.Intake, pt records.Patient, item string) {
	t.Helper()
	ctx := context.Background()
	if item == "" {
		t.Fatal("no quarantined file was matched to the patient")
	}
	subject := lifecycle.Subject{PatientID: pt.ID, Pseudonym: pt.Pseudonym}
	before, err := in.Locations(ctx, subject)
	if err != nil || len(before) != 1 || before[0].Count != 1 || before[0].Stage != lifecycle.StageCollection {
		t.Fatalf("locations before erasure: %+v, %v; want the held polyglot", before, err)
	}
	if _, err := in.Erase(ctx, subject, "REQUEST test-1"); err != nil {
		t.Fatal(err)
	}
	after, err := in.Locations(ctx, subject)
	if err != nil || len(after) != 1 || after[0].Stage != lifecycle.StageDestruction {
		t.Errorf("locations after erasure: %+v, %v; want the file destroyed", after, err)
	}
}
