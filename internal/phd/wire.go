package phd

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// CBOR modes. Everything this package writes is deterministic (RFC 8949
// core deterministic encoding) so that the same batch always yields the
// same bytes; everything it reads from the network goes through a strict,
// bounded decoder: no duplicate map keys, no indefinite lengths, no unknown
// fields, no NaN or infinities, limited nesting and sizes.
var (
	encMode   = newEncMode()
	decMode   = newDecMode(cbor.TagsAllowed)   // untrusted COSE structures
	batchMode = newDecMode(cbor.TagsForbidden) // untrusted plaintext and stored readings
)

// Decoder bounds. A batch holds at most maxWireMeasurements measurements;
// Limits.MaxMeasurements may lower that, never raise it.
const (
	maxWireMeasurements = 1024
	maxNesting          = 10
	maxMapPairs         = 32
)

func newEncMode() cbor.EncMode {
	m, err := cbor.EncOptions{
		Sort:          cbor.SortCoreDeterministic,
		IndefLength:   cbor.IndefLengthForbidden,
		ShortestFloat: cbor.ShortestFloat16,
	}.EncMode()
	if err != nil {
		panic(err) // static options; fails only if the library changes
	}
	return m
}

func newDecMode(tags cbor.TagsMode) cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxWireMeasurements,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		NaN:               cbor.NaNDecodeForbidden,
		Inf:               cbor.InfDecodeForbidden,
		UTF8:              cbor.UTF8RejectInvalid,
		TagsMd:            tags,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return m
}

// MessageID identifies one message; gateways and the server deduplicate
// on it (idempotent delivery).
type MessageID [16]byte

// NewMessageID returns a random message id.
func NewMessageID() (MessageID, error) {
	var id MessageID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("new message id: %w", err)
	}
	return id, nil
}

// ParseMessageID reads the hexadecimal form String writes.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("parse message id: want %d hex bytes", len(id))
	}
	copy(id[:], b)
	return id, nil
}

func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is unset.
func (id MessageID) IsZero() bool { return id == MessageID{} }

// Batch is what a device sends in one message: 1..N measurements, bound to
// the device, its patient and the message's sequence number.
type Batch struct {
	DeviceID string
	// Patient is the pseudonymous patient reference the device certificate
	// is bound to; never a name or resident registration number.
	Patient      string
	Seq          uint64 // monotonic per device, from 1
	MessageID    MessageID
	Sent         time.Time // carried in the signed header, to the second
	Measurements []Measurement
}

// The encrypted plaintext. Integer keys keep it small; unknown keys are
// refused on decode so a field cannot be smuggled past an older server.
type wireBatch struct {
	DeviceID     string            `cbor:"1,keyasint"`
	Patient      string            `cbor:"2,keyasint"`
	Seq          uint64            `cbor:"3,keyasint"`
	MessageID    []byte            `cbor:"4,keyasint"`
	Measurements []wireMeasurement `cbor:"5,keyasint"`
}

type wireMeasurement struct {
	Code       uint32          `cbor:"1,keyasint"`
	Unit       string          `cbor:"2,keyasint"`
	Value      float64         `cbor:"3,keyasint,omitempty"`
	TimeMillis int64           `cbor:"4,keyasint"`
	Components []wireComponent `cbor:"5,keyasint,omitempty"`
}

type wireComponent struct {
	_     struct{} `cbor:",toarray"`
	Code  uint32
	Value float64
}

func encodeBatch(b Batch) ([]byte, error) {
	w := wireBatch{
		DeviceID: b.DeviceID, Patient: b.Patient, Seq: b.Seq,
		MessageID: b.MessageID[:], Measurements: make([]wireMeasurement, len(b.Measurements)),
	}
	for i, m := range b.Measurements {
		w.Measurements[i] = toWire(m)
	}
	return encMode.Marshal(w)
}

func toWire(m Measurement) wireMeasurement {
	w := wireMeasurement{Code: uint32(m.Code), Unit: m.Unit, Value: m.Value, TimeMillis: m.Time.UnixMilli()}
	for _, c := range m.Components {
		w.Components = append(w.Components, wireComponent{Code: uint32(c.Code), Value: c.Value})
	}
	return w
}

func fromWire(w wireMeasurement) Measurement {
	m := Measurement{Code: Code(w.Code), Unit: w.Unit, Value: w.Value, Time: time.UnixMilli(w.TimeMillis).UTC()}
	for _, c := range w.Components {
		m.Components = append(m.Components, Component{Code: Code(c.Code), Value: c.Value})
	}
	return m
}

// DecodeBatch decodes a batch plaintext (as Open does after decrypting).
// It is exported for the fuzz tests and for tools that inspect plaintexts;
// it checks structure, not the catalog (that is Assess).
func DecodeBatch(plaintext []byte) (*Batch, error) {
	var w wireBatch
	if err := batchMode.Unmarshal(plaintext, &w); err != nil {
		return nil, refuseWrap(ReasonMalformed, "batch", err)
	}
	if len(w.MessageID) != len(MessageID{}) {
		return nil, refuse(ReasonMalformed, "batch message id must be %d bytes", len(MessageID{}))
	}
	b := &Batch{DeviceID: w.DeviceID, Patient: w.Patient, Seq: w.Seq}
	copy(b.MessageID[:], w.MessageID)
	for _, wm := range w.Measurements {
		b.Measurements = append(b.Measurements, fromWire(wm))
	}
	if err := checkBatchShape(b, maxWireMeasurements); err != nil {
		return nil, err
	}
	return b, nil
}

// checkBatchShape checks what every batch must satisfy, on both sides.
func checkBatchShape(b *Batch, maxMeasurements int) error {
	if err := checkDeviceID(b.DeviceID); err != nil {
		return err
	}
	if err := checkPatientRef(b.Patient); err != nil {
		return err
	}
	if b.Seq == 0 {
		return refuse(ReasonMalformed, "sequence numbers start at 1")
	}
	if b.MessageID.IsZero() {
		return refuse(ReasonMalformed, "message id is missing")
	}
	if len(b.Measurements) == 0 {
		return refuse(ReasonMalformed, "batch holds no measurement")
	}
	if len(b.Measurements) > maxMeasurements {
		return refuse(ReasonTooManyMeasurements, "batch holds %d measurements, at most %d allowed", len(b.Measurements), maxMeasurements)
	}
	return nil
}

// Device ids and patient references travel in clear headers and end up in
// logs, metrics and file names, so they are restricted to a safe alphabet.
func checkDeviceID(s string) error { return checkToken("device id", s, 64) }

func checkPatientRef(s string) error { return checkToken("patient reference", s, 128) }

func checkToken(what, s string, max int) error {
	if len(s) == 0 || len(s) > max {
		return refuse(ReasonMalformed, "%s must be 1..%d characters", what, max)
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			return refuse(ReasonMalformed, "%s may hold only letters, digits and . _ : -", what)
		}
	}
	return nil
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}
