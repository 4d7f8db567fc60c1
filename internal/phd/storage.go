package phd

import (
	"time"
)

// The storage form of a reading: a CBOR array, version first, so the
// server keeps JSON off its hot path and renders FHIR on read.
type storedReading struct {
	_          struct{} `cbor:",toarray"`
	Version    uint8
	Code       uint32
	Unit       string
	Value      float64
	TimeMillis int64
	Components []storedComponent
	DeviceID   string
	Patient    string
	MessageID  []byte
	Index      uint32
	Flag       uint8
}

type storedComponent struct {
	_     struct{} `cbor:",toarray"`
	Code  uint32
	Value float64
	Flag  uint8
}

const storedVersion = 1

// EncodeReading returns the compact storage form of r (typically 70–110
// bytes). Seal it before it touches the disk: it is PHI.
func EncodeReading(r Reading) ([]byte, error) {
	s := storedReading{
		Version: storedVersion, Code: uint32(r.Code), Unit: r.Unit, Value: r.Value,
		TimeMillis: r.Time.UnixMilli(), DeviceID: r.DeviceID, Patient: r.Patient,
		MessageID: r.MessageID[:], Index: uint32(r.Index), Flag: uint8(r.Flag),
	}
	for _, c := range r.Components {
		s.Components = append(s.Components, storedComponent{Code: uint32(c.Code), Value: c.Value, Flag: uint8(c.Flag)})
	}
	return encMode.Marshal(s)
}

// DecodeReading reads what EncodeReading wrote.
func DecodeReading(data []byte) (Reading, error) {
	var s storedReading
	if err := batchMode.Unmarshal(data, &s); err != nil {
		return Reading{}, refuseWrap(ReasonMalformed, "stored reading", err)
	}
	if s.Version != storedVersion || len(s.MessageID) != len(MessageID{}) {
		return Reading{}, refuse(ReasonMalformed, "stored reading version %d or message id length %d", s.Version, len(s.MessageID))
	}
	r := Reading{
		Measurement: Measurement{Code: Code(s.Code), Unit: s.Unit, Value: s.Value, Time: time.UnixMilli(s.TimeMillis).UTC()},
		DeviceID:    s.DeviceID, Patient: s.Patient, Index: int(s.Index), Flag: Flag(s.Flag),
	}
	copy(r.MessageID[:], s.MessageID)
	for _, c := range s.Components {
		r.Components = append(r.Components, Component{Code: Code(c.Code), Value: c.Value, Flag: Flag(c.Flag)})
	}
	return r, nil
}
