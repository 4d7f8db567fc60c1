// Package audit is medsec's tamper-evident audit log: every access to
// patient data, every administrative change and every denial is an event,
// and events are the leaves of an RFC 6962 Merkle tree whose signed
// checkpoints are kept in the database and in a file outside it.
//
// It answers the paper's Table 2 threat "omission of log records of users
// who access the database (random deletion)" at every location, and the
// traceability requirement of Table 3. Three rules hold:
//   - an access's event is durable before the data leaves (Append returns
//     only after commit; if it fails, the access fails);
//   - no PHI goes into a leaf: patients appear as pseudonyms, so destroying a
//     patient leaves the log verifiable;
//   - any change, deletion, insertion, reordering or truncation is found by
//     Verify, which names the first bad index.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Outcomes of an audited action.
const (
	Success = "success"
	Denied  = "denied"
	Failed  = "error"
)

// Event is one audit record. It never holds PHI: Patient is the patient's
// pseudonym, Resource a record id, Reason a person-readable explanation.
type Event struct {
	Index    uint64          `json:"index"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	Role     string          `json:"role,omitempty"`
	Action   string          `json:"action"`
	Purpose  string          `json:"purpose,omitempty"`
	Patient  string          `json:"patient,omitempty"`
	Resource string          `json:"resource,omitempty"`
	Outcome  string          `json:"outcome"`
	Source   string          `json:"source,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Flags    []string        `json:"flags,omitempty"`
	Decision json.RawMessage `json:"decision,omitempty"`
}

// ErrTampered means the log failed verification; the *VerifyError names the
// first bad index. The security officer must investigate (restore from
// backup, compare with the checkpoint file).
var ErrTampered = errors.New("audit log tampered")

// ErrUnavailable means the event could not be made durable; the access it
// records must not proceed. The caller answers 503.
var ErrUnavailable = errors.New("audit log unavailable")

// encodeBody marshals e without its index; the writer splices the index in
// once it is assigned, so the costly encoding runs in the caller's goroutine.
func encodeBody(e *Event) ([]byte, error) {
	if e.Action == "" || e.Actor == "" || e.Outcome == "" {
		return nil, fmt.Errorf("audit event needs actor, action and outcome (got %q, %q, %q)", e.Actor, e.Action, e.Outcome)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Index = 0
	if b, ok := appendBody(make([]byte, 0, 384+len(e.Decision)), e); ok {
		return b, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	return b, nil
}

// withIndex returns RFC 6962's leaf hash input: the prefix byte 0x00, then
// the leaf, which is body with its "index":0 replaced by idx. The stored
// leaf is the result without its first byte.
func withIndex(body []byte, idx uint64) []byte {
	const prefix = `{"index":0`
	out := make([]byte, 0, 1+len(body)+20)
	out = append(out, rfc6962.RFC6962LeafHashPrefix)
	out = append(out, `{"index":`...)
	out = strconv.AppendUint(out, idx, 10)
	return append(out, body[len(prefix):]...)
}

// DecodeLeaf parses a leaf's bytes back into an Event. A leaf medsec did
// not write (null, {}, an event without actor, action or outcome) is an
// error; whether the bytes are the ones appended is Verify's question.
func DecodeLeaf(leaf []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(leaf, &e); err != nil {
		return Event{}, fmt.Errorf("decode audit event: %w", err)
	}
	if e.Action == "" || e.Actor == "" || e.Outcome == "" {
		return Event{}, fmt.Errorf("decode audit event: no actor, action or outcome: not an event medsec wrote (%w)", ErrTampered)
	}
	return e, nil
}
