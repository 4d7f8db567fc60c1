package device

import (
	"crypto"
	"crypto/ecdh"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/phd"
)

// Agent is a device's protocol side (the IEEE 11073 "agent"): it turns
// readings into sealed messages for the hospital. It is safe for
// concurrent use; each Seal takes the next sequence number.
type Agent struct {
	deviceID string
	patient  string
	signer   *phd.DeviceSigner
	hospital *ecdh.PublicKey
	counter  *Counter
	limits   phd.Limits
}

// AgentConfig is what a device knows after enrolment.
type AgentConfig struct {
	DeviceID string        // the serial in its certificate
	Patient  string        // pseudonymous patient reference in its certificate
	Key      crypto.Signer // its own private key
	Hospital *ecdh.PublicKey
	Counter  *Counter
}

// NewAgent checks the configuration and builds an Agent.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Key == nil || cfg.Hospital == nil || cfg.Counter == nil {
		return nil, fmt.Errorf("new agent %s: key, hospital key and counter are required", cfg.DeviceID)
	}
	signer, err := phd.NewDeviceSigner(cfg.DeviceID, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	return &Agent{deviceID: cfg.DeviceID, patient: cfg.Patient, signer: signer,
		hospital: cfg.Hospital, counter: cfg.Counter, limits: phd.DefaultLimits()}, nil
}

// Seal checks the readings the way the hospital will (a reading it would
// refuse is refused here, before it uses a sequence number) and seals them
// into one message. Out-of-range values are sent: the hospital stores them
// flagged. It returns the message and its header.
func (a *Agent) Seal(readings []phd.Measurement, now time.Time) ([]byte, phd.Header, error) {
	for i, m := range readings {
		if _, _, err := phd.CheckMeasurement(m, now, a.limits); err != nil {
			return nil, phd.Header{}, fmt.Errorf("seal reading %d: %w", i, err)
		}
	}
	id, err := phd.NewMessageID()
	if err != nil {
		return nil, phd.Header{}, err
	}
	seq, err := a.counter.Next()
	if err != nil {
		return nil, phd.Header{}, err
	}
	b := phd.Batch{DeviceID: a.deviceID, Patient: a.patient, Seq: seq, MessageID: id,
		Sent: now.Truncate(time.Second), Measurements: readings}
	msg, err := phd.Seal(b, a.signer, a.hospital)
	if err != nil {
		return nil, phd.Header{}, err
	}
	return msg, phd.Header{DeviceID: a.deviceID, MessageID: id, Seq: seq, Time: b.Sent.UTC(),
		Patient: a.patient, Algorithm: a.signer.Algorithm()}, nil
}
