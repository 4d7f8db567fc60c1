// Package devicestest builds a small hospital for the tests of the PHD
// pipeline (devices, gateway, ingest): a database with every schema, a key
// provider, an audit log, the one door with a test decider, and helpers to
// register patients and enrol devices and gateways in-process.
//
// The decider allows exactly what the pipeline needs, by principal:
// system:registrar registers patients, system:ingest writes observations
// for treatment, system:reader reads them back. The shipped Cedar policy
// is exercised by the end-to-end tests against a real installation.
package devicestest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Principals the test decider knows.
var (
	Registrar = identity.System("registrar")
	Reader    = identity.System("reader")
)

// Decider allows the pipeline's accesses and nothing else.
type Decider struct{}

// Decide implements records.Decider.
func (Decider) Decide(_ context.Context, q records.Question) records.Decision {
	type key struct{ who, action, class string }
	allowed := map[key]bool{
		{"system:registrar", records.ActionWrite, records.ClassDemographics}: true,
		{"system:ingest", records.ActionWrite, records.ClassObservation}:     q.Purpose == "TREAT",
		{"system:reader", records.ActionRead, records.ClassObservation}:      true,
	}
	if allowed[key{q.Who.ID, q.Action, q.Class}] {
		return records.Decision{Allow: true, Policies: []string{"devicestest"}}
	}
	return records.Decision{Reasons: []string{fmt.Sprintf("devicestest does not allow %s to %s %s", q.Who.ID, q.Action, q.Class)}}
}

// Hospital is an installation's parts, assembled for a test.
type Hospital struct {
	DB       *store.DB
	Keys     *keys.Keyring
	Audit    *audit.Log
	Door     *records.Door
	Verifier *audit.Verifier
}

// Migrations are the schemas the fixture applies; callers add their own
// (ingest.Migrations) with extra.
func Migrations(extra ...[]store.Migration) [][]store.Migration {
	return append([][]store.Migration{keys.Migrations, audit.Migrations, records.Migrations, devices.Migrations}, extra...)
}

// New assembles a hospital on db with fresh keys.
func New(t testing.TB, db *store.DB, extra ...[]store.Migration) *Hospital {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, Migrations(extra...)...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := keys.CreateKeyFile(filepath.Join(dir, "kek.json"), []byte("test passphrase"), keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := &Hospital{DB: db, Keys: keys.NewKeyring(db, p)}
	signer, err := audit.NewSigner("medsec-audit-test", key32())
	if err != nil {
		t.Fatal(err)
	}
	mac, cp := key32(), filepath.Join(dir, "checkpoints")
	if h.Audit, err = audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: mac, CheckpointFile: cp}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Audit.Close(context.Background()) })
	vkey, _ := signer.VerifierKey()
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	h.Verifier = &audit.Verifier{DB: db, Chain: "main", NoteVerifier: nv, MACKey: mac, CheckpointFile: cp}
	h.Door, err = records.New(records.Config{DB: db, Keys: h.Keys, Audit: h.Audit, Decider: Decider{}, PseudonymKey: key32(), IndexKey: key32()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func key32() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

var patients atomic.Int64

// Patient registers a synthetic patient and returns it (ID and Pseudonym).
func (h *Hospital) Patient(t testing.TB) records.Patient {
	t.Helper()
	n := patients.Add(1)
	p, err := h.Door.RegisterPatient(context.Background(), records.Request{Who: Registrar, Purpose: "HOPERAT"},
		records.Patient{Name: fmt.Sprintf("Test Patient %d", n), MRN: fmt.Sprintf("MRN-T%06d", n), Department: "internal_medicine"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Authority opens the device authority of the hospital.
func (h *Hospital) Authority(t testing.TB) *devices.Authority {
	t.Helper()
	a, err := devices.Open(context.Background(), devices.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Organization: "Test Hospital"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// EnrollDevice enrols a device for patientID in-process (token, key pair,
// request, certificate) and returns its credentials, carrying hospitalKey.
func EnrollDevice(t testing.TB, a *devices.Authority, patientID, serial string, kt device.KeyType, hospitalKey *ecdh.PublicKey) *devices.Credentials {
	t.Helper()
	ctx := context.Background()
	tok, err := a.IssueToken(ctx, devices.TokenRequest{Kind: devices.KindDevice, PatientID: patientID, Model: "HEM-9200T", By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := device.GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := device.CreateCSR(key, serial, "HEM-9200T")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := a.Enroll(ctx, tok.Secret, csr)
	if err != nil {
		t.Fatal(err)
	}
	return &devices.Credentials{Key: key, Certificate: iss.Certificate, CA: a.CA(), HospitalKey: hospitalKey}
}

// EnrollGateway enrols a gateway named name, reachable at 127.0.0.1 and
// localhost.
func EnrollGateway(t testing.TB, a *devices.Authority, name string) *devices.Credentials {
	t.Helper()
	ctx := context.Background()
	tok, err := a.IssueToken(ctx, devices.TokenRequest{Kind: devices.KindGateway, Model: name, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := device.GenerateKey(device.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := devices.CreateGatewayCSR(key, name, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := a.Enroll(ctx, tok.Secret, csr)
	if err != nil {
		t.Fatal(err)
	}
	return &devices.Credentials{Key: key, Certificate: iss.Certificate, CA: a.CA()}
}
