package anomaly

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

type fixture struct {
	log   *audit.Log
	inbox *alerts.Inbox
	det   *Detector
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, keys.Migrations, audit.Migrations, alerts.Migrations, Migrations); err != nil {
		t.Fatal(err)
	}
	seed, mac := make([]byte, 32), make([]byte, 32)
	rand.Read(seed)
	rand.Read(mac)
	signer, _ := audit.NewSigner("medsec-anomaly-test", seed)
	log, err := audit.Open(ctx, db, audit.Config{Signer: signer, MACKey: mac, CheckpointFile: filepath.Join(t.TempDir(), "cp")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(ctx) })
	inbox := alerts.New(db, log)
	det := New(db, log.Chain(), inbox)
	det.Rules.Location = time.UTC
	return &fixture{log: log, inbox: inbox, det: det}
}

var day = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func read(actor, patient string, at time.Time, flags ...string) audit.Event {
	return audit.Event{Time: at, Actor: actor, Role: "physician", Action: "observation.read", Purpose: "TREAT", Patient: patient,
		Outcome: audit.Success, Flags: flags, Decision: []byte(`{"allow":true,"policies":["physician-attending"]}`)}
}

func (f *fixture) append(t *testing.T, evs ...audit.Event) {
	t.Helper()
	for _, e := range evs {
		if _, err := f.log.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func repeat(n int, fn func(i int) audit.Event) []audit.Event {
	out := make([]audit.Event, n)
	for i := range out {
		out[i] = fn(i)
	}
	return out
}

func TestRules(t *testing.T) {
	dept := read("st_dept", "P-a", day.Add(10*time.Hour))
	dept.Decision = []byte(`{"allow":true,"policies":["physician-department-encounter"]}`)
	tests := []struct {
		name   string
		events []audit.Event
		want   map[string]int
	}{
		{"bulk reads after hours", repeat(21, func(i int) audit.Event {
			return read("st_a", "P-x", day.Add(23*time.Hour+time.Duration(i)*time.Minute))
		}),
			map[string]int{"bulk-after-hours": 1}},
		{"the same reads in the afternoon", repeat(21, func(i int) audit.Event {
			return read("st_a", "P-x", day.Add(14*time.Hour+time.Duration(i)*time.Minute))
		}),
			map[string]int{}},
		{"repeated denials", repeat(5, func(i int) audit.Event {
			e := read("st_b", "P-y", day.Add(9*time.Hour+time.Duration(i)*time.Second))
			e.Outcome = audit.Denied
			return e
		}), map[string]int{"repeated-denials": 1}},
		{"a gateway reporting the device messages it refused", repeat(8, func(i int) audit.Event {
			return audit.Event{Time: day.Add(9*time.Hour + time.Duration(i)*time.Second), Actor: "gateway:gw-1", Action: "gateway.refuse",
				Outcome: audit.Denied, Resource: "device/SN-1", Reason: "bad-signature: 1 message"}
		}), map[string]int{}},
		{"four denials", repeat(4, func(i int) audit.Event {
			e := read("st_b", "P-y", day.Add(9*time.Hour+time.Duration(i)*time.Second))
			e.Outcome = audit.Denied
			return e
		}), map[string]int{}},
		{"flags", []audit.Event{read("st_c", "P-1", day.Add(9*time.Hour), "co-worker"), read("st_c", "P-2", day.Add(9*time.Hour), "same-surname"),
			read("st_c", "P-3", day.Add(9*time.Hour), "vip")}, map[string]int{"co-worker": 1, "same-surname": 1, "vip": 1}},
		{"outside the care relationship", []audit.Event{dept, read("st_dept", "P-b", day.Add(10*time.Hour))}, map[string]int{"outside-care": 1}},
		{"volume far above usual", append(
			repeat(30, func(i int) audit.Event {
				return read("st_v", "P-v", day.Add(-time.Duration(1+i%3)*24*time.Hour+9*time.Hour+time.Duration(i)*time.Minute))
			}),
			repeat(60, func(i int) audit.Event { return read("st_v", "P-v", day.Add(9*time.Hour+time.Duration(i)*time.Minute)) })...),
			map[string]int{"volume": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				f := newFixture(t, db)
				f.append(t, tt.events...)
				rep, err := f.det.ScanAll(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if rep.Events != uint64(len(tt.events)) || rep.Alerts != sum(tt.want) {
					t.Errorf("scanned %d events, raised %d alerts %v; want %d events, alerts %v", rep.Events, rep.Alerts, rep.ByRule, len(tt.events), tt.want)
				}
				for rule, n := range tt.want {
					if rep.ByRule[rule] != n {
						t.Errorf("rule %s raised %d, want %d", rule, rep.ByRule[rule], n)
					}
				}
			})
		})
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestScanIsIncremental(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.append(t, repeat(15, func(i int) audit.Event {
			return read("st_a", "P-x", day.Add(23*time.Hour+time.Duration(i)*time.Minute))
		})...)
		if rep, err := f.det.ScanAll(ctx); err != nil || rep.Alerts != 0 {
			t.Fatalf("first scan: %+v, %v; want no alert at 15 reads", rep, err)
		}
		f.append(t, repeat(10, func(i int) audit.Event {
			return read("st_a", "P-x", day.Add(23*time.Hour+30*time.Minute+time.Duration(i)*time.Minute))
		})...)
		rep, err := f.det.ScanAll(ctx)
		if err != nil || rep.Events != 10 || rep.ByRule["bulk-after-hours"] != 1 {
			t.Fatalf("second scan: %+v, %v; want the 10 new events to cross the threshold once", rep, err)
		}
		if rep, _ := f.det.ScanAll(ctx); rep.Events != 0 || rep.Alerts != 0 {
			t.Errorf("third scan with nothing new: %+v", rep)
		}
		open, _ := f.inbox.List(ctx, alerts.Filter{Kind: alerts.KindAnomaly})
		if len(open) != 1 || open[0].Subject != "st_a" {
			t.Errorf("inbox %+v, want one alert about st_a", open)
		}
	})
}
