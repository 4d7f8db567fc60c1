package ingest_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/devices/devicestest"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// fixture is a hospital with ingestion, one patient and tools to make
// devices and messages.
type fixture struct {
	t       testing.TB
	h       *devicestest.Hospital
	a       *devices.Authority
	in      *ingest.Ingester
	clock   *clock
	patient records.Patient
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	h := devicestest.New(t, db, ingest.Migrations)
	f := &fixture{t: t, h: h, clock: &clock{t: time.Now()}}
	var err error
	f.a, err = devices.Open(context.Background(), devices.Config{DB: db, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	f.in = f.ingester()
	f.patient = h.Patient(t)
	return f
}

// ingester is a new Ingester on the fixture's hospital (a second one plays
// a restarted server).
func (f *fixture) ingester() *ingest.Ingester {
	f.t.Helper()
	in, err := ingest.New(context.Background(), ingest.Config{DB: f.h.DB, Keys: f.h.Keys, Audit: f.h.Audit, Door: f.h.Door,
		Authority: f.a, Now: f.clock.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

// testDevice is an enrolled device and its agent.
type testDevice struct {
	creds *devices.Credentials
	agent *device.Agent
	id    devices.Identity
}

func (f *fixture) device(serial string, kt device.KeyType) *testDevice {
	f.t.Helper()
	return f.deviceFor(f.patient.ID, serial, kt)
}

func (f *fixture) deviceFor(patientID, serial string, kt device.KeyType) *testDevice {
	f.t.Helper()
	creds := devicestest.EnrollDevice(f.t, f.a, patientID, serial, kt, f.in.PublicKey())
	id, _ := creds.Identity()
	ctr, err := device.OpenCounter(filepath.Join(f.t.TempDir(), "seq"), 1)
	if err != nil {
		f.t.Fatal(err)
	}
	ag, err := device.NewAgent(device.AgentConfig{DeviceID: id.Serial, Patient: id.Patient, Key: creds.Key, Hospital: creds.HospitalKey, Counter: ctr})
	if err != nil {
		f.t.Fatal(err)
	}
	return &testDevice{creds: creds, agent: ag, id: id}
}

// seal seals n generated readings measured just before the fixture's now.
func (f *fixture) seal(d *testDevice, n int) ([]byte, phd.Header) {
	f.t.Helper()
	readings := device.NewGenerator(uint64(n)+7, 0).Batch(n, f.clock.t.Add(-time.Minute), time.Minute)
	msg, hdr, err := d.agent.Seal(readings, f.clock.t)
	if err != nil {
		f.t.Fatal(err)
	}
	return msg, hdr
}

// sealRaw seals a batch as is, bypassing the agent's checks (to send what
// a broken or hostile device would).
func (f *fixture) sealRaw(d *testDevice, b phd.Batch, to *ecdh.PublicKey) []byte {
	f.t.Helper()
	signer, err := phd.NewDeviceSigner(b.DeviceID, d.creds.Key)
	if err != nil {
		f.t.Fatal(err)
	}
	if b.MessageID.IsZero() {
		b.MessageID, _ = phd.NewMessageID()
	}
	if b.Sent.IsZero() {
		b.Sent = f.clock.t
	}
	msg, err := phd.Seal(b, signer, to)
	if err != nil {
		f.t.Fatal(err)
	}
	return msg
}

func (f *fixture) process(msgs ...[]byte) []ingest.Result {
	return f.in.Process(context.Background(), "gw-test", msgs)
}

// stored reads the patient's stored records through the door.
func (f *fixture) stored(patientID string) (readings []phd.Reading, provenance []records.Record) {
	f.t.Helper()
	recs, err := f.h.Door.Records(context.Background(), records.Request{Who: devicestest.Reader, Purpose: "TREAT"}, patientID,
		records.Filter{Class: records.ClassObservation})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range recs {
		if r.Code == ingest.ProvenanceCode {
			provenance = append(provenance, r)
			continue
		}
		rd, err := phd.DecodeReading(r.Payload)
		if err != nil {
			f.t.Fatalf("record %s: %v", r.ID, err)
		}
		readings = append(readings, rd)
	}
	return readings, provenance
}

func otherHospitalKey(t testing.TB) *ecdh.PublicKey {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}
