package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

func TestStoresReadingsWithProvenance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, kt := range []device.KeyType{device.KeyP256, device.KeyEd25519} {
			d := f.device("SN-"+string(kt), kt)
			msg, hdr := f.seal(d, 9)
			res := f.process(msg)
			want := ingest.Result{MessageID: hdr.MessageID.String(), Status: ingest.Stored, Readings: 9}
			if diff := cmp.Diff(want, res[0]); diff != "" {
				t.Errorf("%s: result (-want +got):\n%s", kt, diff)
			}
		}
		readings, prov := f.stored(f.patient.ID)
		if len(readings) != 18 || len(prov) != 2 {
			t.Fatalf("stored %d readings and %d provenance records, want 18 and 2", len(readings), len(prov))
		}
		for _, r := range readings {
			if _, err := phd.RenderObservation(r); err != nil {
				t.Errorf("stored reading %s does not render as FHIR: %v", r, err)
			}
			if r.Patient != f.patient.Pseudonym {
				t.Errorf("reading %s names patient %s, want %s", r, r.Patient, f.patient.Pseudonym)
			}
		}
	})
}

// TestProvenanceChainVerifies: the chain names device, gateway and server,
// and the kept signature is the device's message, which still verifies.
func TestProvenanceChainVerifies(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	d := f.device("SN-PROV", device.KeyP256)
	msg, hdr := f.seal(d, 3)
	f.process(msg)
	_, prov := f.stored(f.patient.ID)
	if len(prov) != 1 {
		t.Fatalf("%d provenance records, want 1", len(prov))
	}
	if !strings.HasPrefix(prov[0].Source, "device:SN-PROV via gateway:gw-test") {
		t.Errorf("provenance source = %q", prov[0].Source)
	}
	var p ingest.Provenance
	if err := json.Unmarshal(prov[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, a := range p.Agent {
		roles = append(roles, a.Type.Coding[0].Code+"="+a.Who.Identifier.Value)
	}
	if diff := cmp.Diff([]string{"author=SN-PROV", "informant=gw-test", "verifier=ingest"}, roles); diff != "" {
		t.Errorf("provenance chain (-want +got):\n%s", diff)
	}
	if len(p.Target) != 3 || p.Entity[0].What.Identifier.Value != hdr.MessageID.String() {
		t.Errorf("provenance targets %d readings of message %v", len(p.Target), p.Entity)
	}
	if !bytes.Equal(p.Signature[0].Data, msg) {
		t.Fatalf("provenance does not keep the device's message")
	}
	s, err := phd.ParseSigned(p.Signature[0].Data, phd.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(d.creds.Certificate.PublicKey); err != nil {
		t.Errorf("the kept message no longer verifies with the device key: %v", err)
	}
}

func TestRedeliveryStoresOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		d := f.device("SN-DUP", device.KeyP256)
		m1, _ := f.seal(d, 4)
		m2, _ := f.seal(d, 4)
		got := statuses(f.process(m1, m1, m2))
		if diff := cmp.Diff([]string{"stored", "duplicate", "stored"}, got); diff != "" {
			// The second copy of m1 in the same bundle may also come back
			// as retry (in flight); it must never be stored twice.
			if got[1] != ingest.Retry {
				t.Errorf("first bundle (-want +got):\n%s", diff)
			}
		}
		res := f.process(m1, m2)
		if diff := cmp.Diff([]string{"duplicate", "duplicate"}, statuses(res)); diff != "" {
			t.Errorf("redelivery (-want +got):\n%s", diff)
		}
		if res[0].Readings != 4 {
			t.Errorf("duplicate answer says %d readings, want 4 (as first stored)", res[0].Readings)
		}
		if readings, prov := f.stored(f.patient.ID); len(readings) != 8 || len(prov) != 2 {
			t.Errorf("stored %d readings, %d provenance; want 8 and 2 (each message once)", len(readings), len(prov))
		}
	})
}

func statuses(rs []ingest.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ctx := context.Background()
	good := f.device("SN-GOOD", device.KeyP256)
	forger := f.device("SN-FORGER", device.KeyP256)
	other := f.h.Patient(t)
	otherDev := f.deviceFor(other.ID, "SN-OTHER", device.KeyEd25519)
	revoked, suspended, lost := f.device("SN-REV", device.KeyP256), f.device("SN-SUS", device.KeyP256), f.device("SN-LOST", device.KeyP256)
	for serial, st := range map[string]devices.Status{"SN-REV": devices.StatusRevoked, "SN-SUS": devices.StatusSuspended, "SN-LOST": devices.StatusLost} {
		if _, err := f.a.SetStatus(ctx, serial, st, "test", "cli:officer"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // past the registry cache
	batch := func(serial, patient string, ms ...phd.Measurement) phd.Batch {
		if len(ms) == 0 {
			ms = device.NewGenerator(1, 0).Batch(2, f.clock.t.Add(-time.Minute), time.Minute)
		}
		return phd.Batch{DeviceID: serial, Patient: patient, Seq: 1, Measurements: ms}
	}
	pt := f.patient.Pseudonym
	future, old := f.clock.t.Add(time.Hour), f.clock.t.Add(-8*24*time.Hour)
	futureBatch := batch("SN-GOOD", pt)
	futureBatch.Sent = future
	oldBatch := batch("SN-GOOD", pt)
	oldBatch.Sent = old
	forged := f.sealRaw(forger, batch("SN-GOOD", pt), f.in.PublicKey()) // SN-GOOD's id, the forger's key
	tampered, _ := f.seal(good, 2)
	tampered[len(tampered)-5] ^= 0x40
	for _, tt := range []struct {
		name string
		msg  []byte
		want phd.Reason
	}{
		{"forged signature", forged, phd.ReasonBadSignature},
		{"tampered message", tampered, phd.ReasonBadSignature},
		{"certificate for another patient", f.sealRaw(otherDev, batch("SN-OTHER", pt), f.in.PublicKey()), phd.ReasonCertificateMismatch},
		{"revoked device", f.sealRaw(revoked, batch("SN-REV", pt), f.in.PublicKey()), devices.ReasonDeviceRevoked},
		{"suspended device", f.sealRaw(suspended, batch("SN-SUS", pt), f.in.PublicKey()), devices.ReasonDeviceSuspended},
		{"lost device", f.sealRaw(lost, batch("SN-LOST", pt), f.in.PublicKey()), devices.ReasonDeviceLost},
		{"unknown device", f.sealRaw(good, batch("SN-NOBODY", pt), f.in.PublicKey()), devices.ReasonDeviceUnknown},
		{"future timestamp", f.sealRaw(good, futureBatch, f.in.PublicKey()), phd.ReasonTimestampFuture},
		{"too old", f.sealRaw(good, oldBatch, f.in.PublicKey()), phd.ReasonTimestampTooOld},
		{"encrypted to another hospital", f.sealRaw(good, batch("SN-GOOD", pt), otherHospitalKey(t)), phd.ReasonWrongRecipient},
		{"malformed", []byte{0xd2, 0x84, 0x40}, phd.ReasonMalformed},
		{"oversized", bytes.Repeat([]byte{0}, phd.DefaultLimits().MaxMessageBytes+1), phd.ReasonTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := f.process(tt.msg)
			if res[0].Status != ingest.Rejected || res[0].Reason != tt.want {
				t.Errorf("got %s %s (%s), want rejected %s", res[0].Status, res[0].Reason, res[0].Detail, tt.want)
			}
		})
	}
	if readings, _ := f.stored(f.patient.ID); len(readings) != 0 {
		t.Errorf("refused messages stored %d readings", len(readings))
	}
	checkRefusalsAudited(t, f, 12)
}

func checkRefusalsAudited(t *testing.T, f *fixture, want int) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.h.Audit.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	n := 0
	audit.Scan(ctx, f.h.DB, "main", 0, 0, func(e audit.Event) error {
		if e.Action == "phd.message.refuse" && e.Outcome == audit.Denied && e.Actor == "gateway:gw-test" {
			n++
		}
		return nil
	})
	if n != want {
		t.Errorf("%d refusals audited, want %d", n, want)
	}
}

// TestMeasurementsCheckedOneByOne: in a valid message, an unknown code or
// unit is refused alone; a value out of physiological range is stored
// flagged.
func TestMeasurementsCheckedOneByOne(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	d := f.device("SN-MIX", device.KeyP256)
	at := f.clock.t.Add(-time.Minute)
	ms := []phd.Measurement{
		{Code: phd.CodePulseRate, Unit: "/min", Value: 72, Time: at},
		{Code: phd.Code(999999), Unit: "/min", Value: 72, Time: at},       // unknown code
		{Code: phd.CodeBodyWeight, Unit: "[lb_av]", Value: 150, Time: at}, // unit not allowed
		{Code: phd.CodePulseRate, Unit: "/min", Value: 400, Time: at},     // out of range
		{Code: phd.CodeBodyWeight, Unit: "kg", Value: 70, Time: f.clock.t.Add(2 * time.Hour)},
	}
	msg := f.sealRaw(d, phd.Batch{DeviceID: "SN-MIX", Patient: f.patient.Pseudonym, Seq: 1, Measurements: ms}, f.in.PublicKey())
	res := f.process(msg)[0]
	if res.Status != ingest.Stored || res.Readings != 2 || res.Refused != 3 || res.Flagged != 1 {
		t.Fatalf("result = %+v, want stored 2 readings (1 flagged), 3 refused", res)
	}
	readings, _ := f.stored(f.patient.ID)
	var values []float64
	for _, r := range readings {
		values = append(values, r.Value)
		if (r.Value == 400) != (r.Flag == phd.FlagAboveLimits) {
			t.Errorf("reading %v has flag %d", r.Value, r.Flag)
		}
	}
	sort.Float64s(values)
	if !slices.Equal(values, []float64{72, 400}) {
		t.Errorf("stored values %v, want 72 and 400", values)
	}
	var refusal string
	audit.Scan(context.Background(), f.h.DB, "main", 0, 0, func(e audit.Event) error {
		if e.Action == "phd.measurement.refuse" {
			refusal = e.Reason
		}
		return nil
	})
	if refusal != "#1 unknown-code; #2 unit-mismatch; #4 timestamp-future" {
		t.Errorf("audited refusal %q", refusal)
	}
}

// TestSentAfterCertificateExpired: a message sent after the device's
// certificate ran out is refused even if a gateway let it through.
func TestSentAfterCertificateExpired(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	d := f.device("SN-OLD", device.KeyP256)
	f.clock.t = f.clock.t.Add(8 * 24 * time.Hour)
	ms := device.NewGenerator(5, 0).Batch(1, f.clock.t.Add(-time.Minute), time.Minute)
	msg := f.sealRaw(d, phd.Batch{DeviceID: "SN-OLD", Patient: f.patient.Pseudonym, Seq: 1, Measurements: ms}, f.in.PublicKey())
	res := f.process(msg)[0]
	if res.Status != ingest.Rejected || res.Reason != devices.ReasonCertificateExpired {
		t.Errorf("got %s %s (%s), want rejected certificate-expired", res.Status, res.Reason, res.Detail)
	}
}
