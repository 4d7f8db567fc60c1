package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/store"
)

// Scan calls fn for each event of chain with index in [from, to) in order.
// to = 0 means to the end.
func Scan(ctx context.Context, db *store.DB, chain string, from, to uint64, fn func(Event) error) error {
	q := `SELECT event FROM audit_events WHERE chain = ? AND idx >= ? ORDER BY idx`
	args := []any{chain, int64(from)}
	if to > 0 {
		q = `SELECT event FROM audit_events WHERE chain = ? AND idx >= ? AND idx < ? ORDER BY idx`
		args = append(args, int64(to))
	}
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		ev, err := DecodeLeaf(raw)
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Export formats.
const (
	FormatFHIR   = "fhir"
	FormatSyslog = "syslog"
)

// Export writes the events of chain to w as FHIR R4 AuditEvent NDJSON or
// RFC 5424 syslog lines.
func Export(ctx context.Context, db *store.DB, chain, format string, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	host, _ := os.Hostname()
	n := 0
	write := func(ev Event) error {
		var line []byte
		switch format {
		case FormatFHIR:
			b, err := json.Marshal(FHIRAuditEvent(ev))
			if err != nil {
				return err
			}
			line = b
		case FormatSyslog:
			line = []byte(SyslogLine(ev, host))
		default:
			return fmt.Errorf("unknown export format %q: use fhir or syslog", format)
		}
		n++
		bw.Write(line)
		return bw.WriteByte('\n')
	}
	if err := Scan(ctx, db, chain, 0, 0, write); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// fhirAuditEvent is the subset of FHIR R4 AuditEvent medsec emits.
type fhirAuditEvent struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Type         fhirCoding    `json:"type"`
	Subtype      []fhirCoding  `json:"subtype,omitempty"`
	Action       string        `json:"action,omitempty"`
	Recorded     string        `json:"recorded"`
	Outcome      string        `json:"outcome"`
	OutcomeDesc  string        `json:"outcomeDesc,omitempty"`
	PurposeOfEvt []fhirConcept `json:"purposeOfEvent,omitempty"`
	Agent        []fhirAgent   `json:"agent"`
	Source       fhirSource    `json:"source"`
	Entity       []fhirEntity  `json:"entity,omitempty"`
}

type fhirCoding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type fhirConcept struct {
	Coding []fhirCoding `json:"coding"`
}

type fhirRef struct {
	Reference  string `json:"reference,omitempty"`
	Display    string `json:"display,omitempty"`
	Identifier *struct {
		Value string `json:"value"`
	} `json:"identifier,omitempty"`
}

type fhirAgent struct {
	Role      []fhirConcept `json:"role,omitempty"`
	Who       fhirRef       `json:"who"`
	Requestor bool          `json:"requestor"`
	Network   *struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	} `json:"network,omitempty"`
}

type fhirSource struct {
	Observer fhirRef `json:"observer"`
}

type fhirEntity struct {
	What        fhirRef     `json:"what"`
	Role        *fhirCoding `json:"role,omitempty"`
	Description string      `json:"description,omitempty"`
}

// FHIRAuditEvent maps an event onto a FHIR R4 AuditEvent resource.
func FHIRAuditEvent(ev Event) any {
	out := fhirAuditEvent{
		ResourceType: "AuditEvent",
		ID:           fmt.Sprintf("medsec-%d", ev.Index),
		Type:         fhirCoding{System: "http://dicom.nema.org/resources/ontology/DCM", Code: "110110", Display: "Patient Record"},
		Subtype:      []fhirCoding{{System: "urn:medsec:action", Code: ev.Action}},
		Action:       fhirAction(ev.Action),
		Recorded:     ev.Time.UTC().Format(time.RFC3339Nano),
		Outcome:      fhirOutcome(ev.Outcome),
		OutcomeDesc:  ev.Reason,
		Source:       fhirSource{Observer: fhirRef{Display: "medsec"}},
	}
	agent := fhirAgent{Who: fhirRef{Display: ev.Actor}, Requestor: true}
	if ev.Role != "" {
		agent.Role = []fhirConcept{{Coding: []fhirCoding{{System: "urn:medsec:role", Code: ev.Role}}}}
	}
	if ev.Source != "" {
		agent.Network = &struct {
			Address string `json:"address"`
			Type    string `json:"type"`
		}{Address: ev.Source, Type: "2"}
	}
	out.Agent = []fhirAgent{agent}
	if ev.Purpose != "" {
		out.PurposeOfEvt = []fhirConcept{{Coding: []fhirCoding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActReason", Code: ev.Purpose}}}}
	}
	if ev.Patient != "" {
		out.Entity = append(out.Entity, fhirEntity{What: fhirRef{Display: ev.Patient},
			Role: &fhirCoding{System: "http://terminology.hl7.org/CodeSystem/object-role", Code: "1", Display: "Patient"}})
	}
	if ev.Resource != "" {
		out.Entity = append(out.Entity, fhirEntity{What: fhirRef{Reference: ev.Resource}})
	}
	return out
}

func fhirAction(action string) string {
	switch {
	case strings.HasSuffix(action, ".create"), strings.HasSuffix(action, ".import"):
		return "C"
	case strings.HasSuffix(action, ".read"), strings.HasSuffix(action, ".export"):
		return "R"
	case strings.HasSuffix(action, ".update"):
		return "U"
	case strings.HasSuffix(action, ".destroy"), strings.HasSuffix(action, ".delete"):
		return "D"
	}
	return "E"
}

func fhirOutcome(o string) string {
	switch o {
	case Success:
		return "0"
	case Denied:
		return "4"
	}
	return "8"
}

// SyslogLine renders an event as an RFC 5424 message (facility 10,
// security/authorization; severity notice, or warning for denials) with
// the fields as structured data.
func SyslogLine(ev Event, host string) string {
	pri := 10*8 + 5
	if ev.Outcome != Success {
		pri = 10*8 + 4
	}
	if host == "" {
		host = "-"
	}
	var sd strings.Builder
	sd.WriteString("[medsec@32473")
	param := func(k, v string) {
		if v == "" {
			return
		}
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)
		fmt.Fprintf(&sd, ` %s="%s"`, k, r.Replace(v))
	}
	param("index", fmt.Sprint(ev.Index))
	param("actor", ev.Actor)
	param("role", ev.Role)
	param("action", ev.Action)
	param("purpose", ev.Purpose)
	param("patient", ev.Patient)
	param("resource", ev.Resource)
	param("outcome", ev.Outcome)
	param("source", ev.Source)
	sd.WriteString("]")
	msg := ev.Action + " " + ev.Outcome
	if ev.Reason != "" {
		msg += ": " + ev.Reason
	}
	return fmt.Sprintf("<%d>1 %s %s medsec - %s %s %s", pri, ev.Time.UTC().Format(time.RFC3339Nano), host, ev.Action, sd.String(), msg)
}
