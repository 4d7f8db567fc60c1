package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/phd"
)

// PathRefusals is where gateways post the records of device messages they
// refused, relative to the mount point (beside PathMessages).
const PathRefusals = "/v1/refusals"

// Subjects of a refusal record: who was refused, as far as the gateway
// could tell without any patient data. A device serial is named only when
// the device's certificate verified (or verified but for its dates); a
// certificate the hospital did not issue by its fingerprint; a caller
// without a certificate by its network address; SubjectMany when the
// gateway's record limits folded many sources into one record.
const (
	SubjectDevice      = "device:"
	SubjectCertificate = "certificate:sha256:"
	SubjectAddress     = "address:"
	SubjectMany        = "many"
)

// RefusalRecord is one coalesced record of refusals: count messages from
// one subject refused for one reason between First and Last (within one
// minute, unless the gateway's limits folded more). ID is the gateway's;
// the hospital audits each ID once, however often it is posted.
type RefusalRecord struct {
	ID      string     `json:"id"`
	Subject string     `json:"subject"`
	Reason  phd.Reason `json:"reason"`
	Count   int64      `json:"count"`
	First   time.Time  `json:"first"`
	Last    time.Time  `json:"last"`
}

// RefusalBatch is the JSON body a gateway posts to PathRefusals.
type RefusalBatch struct {
	Records []RefusalRecord `json:"records"`
}

// RefusalAnswer answers a batch: one result per record, in order. Stored
// (audited now), Duplicate (audited before) and Rejected (malformed, never
// audited) are final: the gateway drops the record. A failed request
// answers nothing; the gateway sends the batch again later.
type RefusalAnswer struct {
	Gateway string          `json:"gateway"`
	Results []RefusalResult `json:"results"`
}

// RefusalResult is the outcome of one record.
type RefusalResult struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Bounds of a refusal batch.
const (
	MaxRefusalRecords = 256
	maxRefusalBody    = 1 << 20
	maxRefusalCount   = 1 << 40
)

var (
	refusalID    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	refusalCode  = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	subjectValue = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// decodeRefusals reads a posted batch; errors are *phd.Error (malformed,
// too-large).
func decodeRefusals(r io.Reader) (RefusalBatch, error) {
	var b RefusalBatch
	data, err := io.ReadAll(io.LimitReader(r, maxRefusalBody+1))
	if err != nil || len(data) > maxRefusalBody {
		return b, &phd.Error{Reason: phd.ReasonTooLarge, Detail: fmt.Sprintf("a refusal batch holds at most %d bytes", maxRefusalBody)}
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, &phd.Error{Reason: phd.ReasonMalformed, Detail: "a refusal batch is a JSON object with records", Err: err}
	}
	if len(b.Records) == 0 || len(b.Records) > MaxRefusalRecords {
		return b, &phd.Error{Reason: phd.ReasonMalformed, Detail: fmt.Sprintf("send 1 to %d refusal records at once", MaxRefusalRecords)}
	}
	return b, nil
}

// check says what is wrong with a record, if anything.
func (rec RefusalRecord) check() error {
	switch {
	case !refusalID.MatchString(rec.ID):
		return errors.New("id: 1-64 letters, digits, '_' or '-'")
	case !refusalCode.MatchString(string(rec.Reason)):
		return errors.New("reason: a reason code of 1-64 lowercase letters, digits or '-'")
	case rec.Count < 1 || rec.Count > maxRefusalCount:
		return errors.New("count out of range")
	case rec.First.IsZero() || rec.Last.Before(rec.First):
		return errors.New("first and last must be times, first not after last")
	case rec.Subject == SubjectMany:
		return nil
	}
	for _, p := range []string{SubjectDevice, SubjectCertificate, SubjectAddress} {
		if v, ok := strings.CutPrefix(rec.Subject, p); ok && subjectValue.MatchString(v) {
			return nil
		}
	}
	return errors.New("subject: device:SERIAL, certificate:sha256:HEX, address:IP or many")
}

// DeviceSerial is the serial a record names, or "".
func (rec RefusalRecord) DeviceSerial() string {
	s, _ := strings.CutPrefix(rec.Subject, SubjectDevice)
	if s == rec.Subject {
		return ""
	}
	return s
}
