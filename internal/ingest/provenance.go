package ingest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/records"
)

// ProvenanceCode is the record code of a message's FHIR Provenance. It is
// stored with the readings as a record of class observation (the door
// writes one class per batch, and the provenance belongs to the batch).
const ProvenanceCode = "Provenance"

// LabelOutOfRange marks a stored reading outside physiological limits.
const LabelOutOfRange = "out-of-range"

// recordsOf turns an assessed batch into the records the door stores: one
// per accepted reading (its compact form; FHIR is rendered on read) and
// the message's Provenance.
func (in *Ingester) recordsOf(gateway string, v *verified, b *phd.Batch, a phd.Assessment) ([]records.Record, error) {
	src := fmt.Sprintf("device:%s via gateway:%s", b.DeviceID, gateway)
	out := make([]records.Record, 0, len(a.Readings)+1)
	for _, r := range a.Readings {
		payload, err := phd.EncodeReading(r)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r, err)
		}
		rec := records.Record{Class: records.ClassObservation, Code: codeOf(r), Effective: r.Time, Source: src, Payload: payload}
		if r.Flag != 0 {
			rec.Labels = []string{LabelOutOfRange}
		}
		out = append(out, rec)
	}
	prov, err := json.Marshal(provenanceOf(gateway, v, a, in.now()))
	if err != nil {
		return nil, fmt.Errorf("provenance of message %s: %w", v.header.MessageID, err)
	}
	return append(out, records.Record{Class: records.ClassObservation, Code: ProvenanceCode, Effective: v.header.Time,
		Source: src, Payload: prov}), nil
}

// codeOf is the LOINC code of a reading (what clinicians search by), or
// its MDC code when the catalog has no LOINC code for it.
func codeOf(r phd.Reading) string {
	k, ok := phd.LookupKind(r.Code)
	if !ok {
		return "mdc:" + r.Code.String()
	}
	u, _ := k.Unit(r.Unit)
	if code, _ := k.LOINCFor(u); code != "" {
		return code
	}
	return "mdc:" + r.Code.String()
}

// Provenance is a FHIR R4 Provenance resource, the elements used here.
type Provenance struct {
	ResourceType string               `json:"resourceType"`
	Target       []provReference      `json:"target"`
	Occurred     string               `json:"occurredDateTime"`
	Recorded     string               `json:"recorded"`
	Activity     *phd.CodeableConcept `json:"activity,omitempty"`
	Agent        []ProvenanceAgent    `json:"agent"`
	Entity       []provEntity         `json:"entity"`
	Signature    []provSignature      `json:"signature"`
}

// ProvenanceAgent is one link of the chain: who, in what role.
type ProvenanceAgent struct {
	Type phd.CodeableConcept `json:"type"`
	Who  provReference       `json:"who"`
}

type provReference struct {
	Identifier *phd.Identifier `json:"identifier,omitempty"`
	Display    string          `json:"display,omitempty"`
}

type provEntity struct {
	Role string        `json:"role"`
	What provReference `json:"what"`
}

type provSignature struct {
	Type      []phd.Coding  `json:"type"`
	When      string        `json:"when"`
	Who       provReference `json:"who"`
	SigFormat string        `json:"sigFormat"`
	Data      []byte        `json:"data"` // base64 in JSON: the device's COSE_Sign1 message as sent
}

// Identifier systems of the chain's participants.
const (
	SystemDevice  = "urn:medsec:device"
	SystemGateway = "urn:medsec:gateway"
	SystemMessage = "urn:medsec:phd:message"
	systemServer  = "urn:medsec:server"
	systemAgent   = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	systemSigType = "urn:iso-astm:E1762-95:2013"
)

// provenanceOf records the chain device (author) → gateway (informant) →
// server (verifier) and keeps the device's signed message as the
// signature, so anyone holding the device certificate can check later
// what the device sent.
func provenanceOf(gateway string, v *verified, a phd.Assessment, now time.Time) Provenance {
	h := v.header
	p := Provenance{ResourceType: "Provenance", Occurred: h.Time.UTC().Format(time.RFC3339),
		Recorded: now.UTC().Format(time.RFC3339Nano),
		Activity: &phd.CodeableConcept{Coding: []phd.Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-DataOperation", Code: "CREATE"}}},
		Agent: []ProvenanceAgent{
			agent("author", SystemDevice, h.DeviceID, fmt.Sprintf("device %s (model %s), %s", h.DeviceID, v.device.Model, h.Algorithm)),
			agent("informant", SystemGateway, gateway, "security gateway "+gateway),
			agent("verifier", systemServer, "ingest", "medsec ingestion: signature, registry status and binding verified"),
		},
		Entity: []provEntity{{Role: "source", What: provReference{Identifier: &phd.Identifier{System: SystemMessage, Value: h.MessageID.String()},
			Display: fmt.Sprintf("message %d of device %s", h.Seq, h.DeviceID)}}},
		Signature: []provSignature{{Type: []phd.Coding{{System: systemSigType, Code: "1.2.840.10065.1.12.1.5", Display: "Verification Signature"}},
			When: h.Time.UTC().Format(time.RFC3339), Who: provReference{Identifier: &phd.Identifier{System: SystemDevice, Value: h.DeviceID}},
			SigFormat: "application/cose", Data: v.raw}},
	}
	for _, r := range a.Readings {
		p.Target = append(p.Target, provReference{Identifier: &phd.Identifier{System: phd.SystemReadingID, Value: r.ID()}})
	}
	if len(p.Target) == 0 { // every measurement refused: the provenance is the message's
		p.Target = []provReference{{Identifier: p.Entity[0].What.Identifier, Display: "no reading accepted"}}
	}
	return p
}

func agent(role, system, value, display string) ProvenanceAgent {
	return ProvenanceAgent{Type: phd.CodeableConcept{Coding: []phd.Coding{{System: systemAgent, Code: role}}},
		Who: provReference{Identifier: &phd.Identifier{System: system, Value: value}, Display: display}}
}
