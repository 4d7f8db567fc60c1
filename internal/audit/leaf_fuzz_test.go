package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medsec/medsec/internal/store/storetest"
)

// storedLeaves appends events through the real writer and reads back the
// leaf bytes it stored.
func storedLeaves(f *testing.F, events []Event) [][]byte {
	fx := newFixtureTB(f, storetest.OpenSQLite(f), 8)
	ctx := context.Background()
	for _, e := range events {
		if _, err := fx.log.Append(ctx, e); err != nil {
			f.Fatal(err)
		}
	}
	rows, err := fx.db.Query(ctx, `SELECT event FROM audit_events ORDER BY idx`)
	if err != nil {
		f.Fatal(err)
	}
	defer rows.Close()
	var leaves [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			f.Fatal(err)
		}
		leaves = append(leaves, raw)
	}
	if err := rows.Err(); err != nil || len(leaves) != len(events) {
		f.Fatalf("read %d leaves of %d: %v", len(leaves), len(events), err)
	}
	return leaves
}

// FuzzDecodeLeaf: event bytes read back from the database (which an
// intruder may have edited) either give an error or an event that
// re-encodes and decodes to itself; the leaves the writer stores decode to
// the events appended, at their index.
func FuzzDecodeLeaf(f *testing.F) {
	events := []Event{testEvent(0), testEvent(1)}
	dec := testEvent(2)
	dec.Flags, dec.Decision = []string{"break-glass"}, json.RawMessage(`{"allow":true,"policies":["treating-physician"]}`)
	dec.Reason = "보호자 요청 <emergency> & \"quoted\" \u2028"
	events = append(events, dec)
	for i := range events {
		events[i].Time = time.Date(2026, 1, 2, 3, 4, 5, 6+i, time.FixedZone("KST", 9*3600)) // stored as UTC
	}
	leaves := storedLeaves(f, events)
	for i, leaf := range leaves {
		e, err := DecodeLeaf(leaf)
		want := events[i]
		want.Index, want.Time = uint64(i), want.Time.UTC()
		if err != nil || !sameEvent(e, want) {
			f.Fatalf("leaf %d decodes to %+v, %v; appended %+v", i, e, err, want)
		}
		f.Add(leaf)
		f.Add(leaf[:len(leaf)/2])
		f.Add(bytes.Replace(leaf, []byte(`"actor"`), []byte(`"actor":"mallory","actor"`), 1))
	}
	f.Add(bytes.Replace(leaves[2], []byte(`{"allow"`), []byte(` { "allow"`), 1))
	for _, s := range []string{`null`, `{}`, `{"index":-1}`, `{"index":18446744073709551616}`, `{"time":"10000-01-01T00:00:00Z"}`,
		`{"decision":null}`, `{"ACTOR":"x","flags":[null]}`, "{\"reason\":\"\xff\"}", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := DecodeLeaf(leaf)
		if err != nil {
			return
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		back, err := DecodeLeaf(again)
		if err != nil || !sameEvent(e, back) {
			t.Fatalf("event changed through re-encoding: %+v, %v; decoded %+v", back, err, e)
		}
	})
}

// sameEvent compares events field by field; the decision is compared as
// the JSON value it holds (encoding compacts a raw message and escapes
// HTML in its strings).
func sameEvent(a, b Event) bool {
	return cmp.Equal(a, b, cmpopts.IgnoreFields(Event{}, "Decision"), cmpopts.EquateEmpty()) &&
		cmp.Equal(jsonValue(a.Decision), jsonValue(b.Decision))
}

func jsonValue(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "invalid: " + err.Error()
	}
	return v
}
