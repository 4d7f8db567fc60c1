package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendBody checks that the hand-written encoder writes exactly what
// json.Marshal writes, for any strings, flags, time and decision. The seeds
// run as an ordinary test.
func FuzzAppendBody(f *testing.F) {
	f.Add("staff-1", "physician", "patient.read", "", "P-0001", "Observation/o1", "127.0.0.1", "care team", "break-glass", `{"allow":true,"rule":"r1"}`, int64(1796000000123456789))
	f.Add("a\"b\\c", "<script>&", "x\u2028y\u2029z", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "\xff\xfe", "é漢字🙂", "a\xc3", "", "", int64(0))
	f.Add("x", "", "y", "", "", "", "", "", "", " { \"a\" : [1, 2] , \"b\":\"<&>\u2028\" } ", int64(-62135596800000000))
	f.Add("x", "", "y", "", "", "", "", "", "", `{"broken":`, int64(1))
	f.Add("x", "", "y", "", "", "", "", "", "", "", int64(253402300800000000)) // year 10000
	f.Fuzz(func(t *testing.T, actor, role, action, purpose, patient, resource, source, reason, flag, decision string, unixNano int64) {
		e := Event{Time: time.Unix(0, unixNano).UTC(), Actor: actor, Role: role, Action: action, Purpose: purpose,
			Patient: patient, Resource: resource, Outcome: Success, Source: source, Reason: reason}
		if flag != "" {
			e.Flags = []string{flag, flag + "2"}
		}
		if decision != "" {
			e.Decision = json.RawMessage(decision)
		}
		want, werr := json.Marshal(&e)
		got, ok := appendBody(nil, &e)
		if !ok {
			if werr == nil && json.Valid(e.Decision) && e.Time.Year() >= 0 && e.Time.Year() <= 9999 {
				t.Fatalf("fast encoder declined an event json.Marshal encodes: %s", want)
			}
			return
		}
		if werr != nil {
			t.Fatalf("fast encoder accepted an event json.Marshal rejects (%v): %s", werr, got)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encodings differ:\n got  %s\n want %s", got, want)
		}
	})
}

// TestEncodeBodyFallsBack checks that what the fast encoder declines still
// fails or encodes as json.Marshal decides.
func TestEncodeBodyFallsBack(t *testing.T) {
	e := Event{Actor: "a", Action: "b", Outcome: Success, Decision: json.RawMessage(`{"broken":`)}
	if _, err := encodeBody(&e); err == nil {
		t.Error("an event with an invalid decision was encoded")
	}
	e = Event{Actor: "a", Action: "b", Outcome: Success, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := encodeBody(&e); err == nil {
		t.Error("an event in the year 10000 was encoded")
	}
}
