package demo

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/gateway/pipeline"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/records"
)

// PHDReport shows a personal health device's readings travelling to the
// hospital (locations 1–3): sent and stored count readings; rejected_forged
// counts forged messages the gateway refused; refusals_audited counts the
// refused messages the gateway's refusal records brought into the
// hospital's audit log (gateway.refuse events).
type PHDReport struct {
	Device          string   `json:"device"`
	Gateway         string   `json:"gateway"`
	Messages        int      `json:"messages"`
	Sent            int      `json:"sent"`
	Stored          int      `json:"stored"`
	RejectedForged  int      `json:"rejected_forged"`
	Refusals        []string `json:"refusals"`
	RefusalsAudited int64    `json:"refusals_audited"`
	Provenance      string   `json:"provenance"`
}

// phdMessages and phdReadings size the demo device's stream.
const (
	phdMessages = 3
	phdReadings = 4
)

// sendDeviceReadings enrols a blood-pressure monitor for a patient, runs
// the hospital server with ingestion and a security gateway on loopback
// (real TLS), sends its readings, reads them back as the attending
// physician with their provenance, and sends forged messages that must be
// refused.
func (s *scenario) sendDeviceReadings(ctx context.Context) error {
	p, err := pipeline.Start(ctx, s.h, pipeline.Options{Dir: filepath.Join(s.opt.Dir, "phd")})
	if err != nil {
		return err
	}
	defer p.Close()
	pt := s.patient[1]
	fd, err := p.EnrollDevice(ctx, pt.ID, "HEM-7600T-0001", "HEM-7600T", device.KeyP256)
	if err != nil {
		return err
	}
	rep := PHDReport{Device: "HEM-7600T-0001", Gateway: p.Gateway.Name()}
	s.opt.Log("enrolled device %s for patient %s (one-time token, its own key pair, a 7-day certificate); gateway %s and the server talk mutual TLS on loopback",
		rep.Device, pt.Pseudonym, rep.Gateway)
	sender := gateway.NewSender(p.GatewayURL, fd.Creds)
	defer sender.Close()
	agent, err := fd.Agent()
	if err != nil {
		return err
	}
	var genuine []byte
	for i := range phdMessages {
		now := time.Now()
		msg, _, err := agent.Seal(device.NewGenerator(uint64(i)+11, 0).Batch(phdReadings, now.Add(-time.Hour), 15*time.Minute), now)
		if err != nil {
			return err
		}
		if _, err := sender.SendReliably(ctx, msg); err != nil {
			return err
		}
		genuine = msg
		rep.Messages++
		rep.Sent += phdReadings
	}
	if err := s.forgeries(ctx, p, sender, genuine, &rep); err != nil {
		return err
	}
	if err := s.readDeviceReadings(ctx, pt.ID, &rep); err != nil {
		return err
	}
	if err := waitRefusalsAudited(ctx, p, &rep); err != nil {
		return err
	}
	s.rep.PHD = rep
	s.opt.Log("the device sent %d readings in %d sealed messages; %d stored, read back by Dr. Kim with provenance %s", rep.Sent, rep.Messages, rep.Stored, rep.Provenance)
	s.opt.Log("%d forged messages refused by the gateway: %s; %d of them audited at the hospital (gateway.refuse)",
		rep.RejectedForged, strings.Join(rep.Refusals, ", "), rep.RefusalsAudited)
	return nil
}

// waitRefusalsAudited waits (15 s at most) until the gateway's records of
// the forged messages it refused are in the hospital's audit log.
func waitRefusalsAudited(ctx context.Context, p *pipeline.Pipeline, rep *PHDReport) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := p.Ingester.RefusalsAudited(ctx, rep.Gateway)
		if err != nil {
			return err
		}
		rep.RefusalsAudited = n
		if n >= int64(rep.RejectedForged) || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// forgeries sends what an attacker between device and hospital could: a
// message signed with another key in the device's name, a genuine message
// changed in transit, and a second device's message naming this patient.
func (s *scenario) forgeries(ctx context.Context, p *pipeline.Pipeline, sender *gateway.Sender, genuine []byte, rep *PHDReport) error {
	impostorKey, err := device.GenerateKey(device.KeyP256)
	if err != nil {
		return err
	}
	pt := s.patient[1]
	signed, err := phd.ParseSigned(genuine, phd.DefaultLimits())
	if err != nil {
		return err
	}
	h := signed.Header()
	forged, err := sealAs(h.DeviceID, pt.Pseudonym, h.Seq+100, impostorKey, p.Ingester.PublicKey())
	if err != nil {
		return err
	}
	tampered := append([]byte(nil), genuine...)
	tampered[len(tampered)-10] ^= 0x01
	other, err := p.EnrollDevice(ctx, s.patient[2].ID, "GL-50-0002", "GL-50", device.KeyP256)
	if err != nil {
		return err
	}
	otherID, _ := other.Creds.Identity()
	misbound, err := sealAs(otherID.Serial, pt.Pseudonym, 1, other.Creds.Key, p.Ingester.PublicKey())
	if err != nil {
		return err
	}
	otherSender := gateway.NewSender(p.GatewayURL, other.Creds)
	defer otherSender.Close()
	for _, f := range []struct {
		via *gateway.Sender
		msg []byte
	}{{sender, forged}, {sender, tampered}, {otherSender, misbound}} {
		_, err := f.via.Send(ctx, f.msg)
		var ref *gateway.Refused
		if !errors.As(err, &ref) {
			return fmt.Errorf("%w: a forged message was not refused (%v)", errStep, err)
		}
		rep.RejectedForged++
		rep.Refusals = append(rep.Refusals, string(ref.Reason))
	}
	return nil
}

// sealAs seals two readings as device id for patient with key.
func sealAs(id, patient string, seq uint64, key crypto.Signer, hospital *ecdh.PublicKey) ([]byte, error) {
	signer, err := phd.NewDeviceSigner(id, key)
	if err != nil {
		return nil, err
	}
	mid, err := phd.NewMessageID()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	b := phd.Batch{DeviceID: id, Patient: patient, Seq: seq, MessageID: mid, Sent: now,
		Measurements: device.NewGenerator(99, 0).Batch(2, now.Add(-time.Minute), time.Minute)}
	return phd.Seal(b, signer, hospital)
}

// readDeviceReadings waits until the readings are stored and reads them
// back through the door as the attending physician, with the provenance
// of their messages.
func (s *scenario) readDeviceReadings(ctx context.Context, patientID string, rep *PHDReport) error {
	req := records.Request{Who: s.staff["dr.kim"], Purpose: "TREAT"}
	deadline := time.Now().Add(15 * time.Second)
	for {
		recs, err := s.h.Door.Records(ctx, req, patientID, records.Filter{Class: records.ClassObservation})
		if err != nil {
			return err
		}
		stored, prov := deviceRecords(recs)
		if stored >= rep.Sent || time.Now().After(deadline) {
			rep.Stored = stored
			rep.Provenance = chainOf(prov)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deviceRecords counts the readings a device stored and returns the last
// provenance record.
func deviceRecords(recs []records.Record) (int, []byte) {
	n := 0
	var prov []byte
	for _, r := range recs {
		if !strings.HasPrefix(r.Source, "device:") {
			continue
		}
		if r.Code == ingest.ProvenanceCode {
			prov = r.Payload
			continue
		}
		n++
	}
	return n, prov
}

// chainOf renders a Provenance's agents as "author SN → informant gw → verifier ingest".
func chainOf(raw []byte) string {
	var p ingest.Provenance
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	var parts []string
	for _, a := range p.Agent {
		if len(a.Type.Coding) > 0 && a.Who.Identifier != nil {
			parts = append(parts, a.Type.Coding[0].Code+" "+a.Who.Identifier.Value)
		}
	}
	return strings.Join(parts, " → ")
}
