package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/synth"
)

func TestParsePeriod(t *testing.T) {
	at := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in     string
		before string // at minus the period
		bad    string
	}{
		{in: "10y", before: "2016-03-31T12:00"},
		{in: "2y6mo", before: "2023-10-01T12:00"}, // Go normalizes September 31st
		{in: "30d", before: "2026-03-01T12:00"},
		{in: "2w", before: "2026-03-17T12:00"},
		{in: "36h", before: "2026-03-30T00:00"},
		{in: "", bad: "empty period"},
		{in: "0d", bad: "is zero"},
		{in: "10x", bad: "unknown unit"},
		{in: "y", bad: "expected a number"},
		{in: "1y1y", bad: "given twice"},
		{in: "123456y", bad: "at most 5 digits"},
		{in: "-1y", bad: "expected a number"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			p, err := lifecycle.ParsePeriod(c.in)
			if c.bad != "" {
				if err == nil || !strings.Contains(err.Error(), c.bad) {
					t.Fatalf("got %v, %v; want an error saying %q", p, err, c.bad)
				}
				return
			}
			if got := p.Before(at).Format("2006-01-02T15:04"); err != nil || got != c.before {
				t.Errorf("%s before %s = %s (%v), want %s", c.in, at, got, err, c.before)
			}
			if again, _ := lifecycle.ParsePeriod(p.String()); again != p {
				t.Errorf("%s prints as %s, which reads back as %v", c.in, p, again)
			}
		})
	}
}

func TestProfiles(t *testing.T) {
	for _, name := range []string{"kr", "us"} {
		s, raw, err := lifecycle.Profile(name)
		if err != nil {
			t.Fatalf("profile %s: %v", name, err)
		}
		if s.Name != name || !strings.Contains(string(raw), "not legal advice") {
			t.Errorf("profile %s: name %q, or its text lacks the warning", name, s.Name)
		}
		for _, class := range []string{"demographics", "note", "observation", "medication", "imaging", "audit"} {
			if _, ok := s.Rule(class); !ok {
				t.Errorf("profile %s has no rule for %s", name, class)
			}
		}
	}
	kr, _, _ := lifecycle.Profile("kr")
	for class, want := range map[string]lifecycle.Period{"note": {Years: 10}, "medication": {Years: 2}, "observation": {Years: 5}, "demographics": {Years: 5}} {
		if r, _ := kr.Rule(class); r.Keep != want || !r.Mandatory {
			t.Errorf("kr %s: keep %s mandatory %v, want %s mandatory (Medical Service Act Enforcement Rule Art. 15)", class, r.Keep, r.Mandatory, want)
		}
	}
	if _, _, err := lifecycle.Profile("fr"); err == nil || !strings.Contains(err.Error(), "kr, us") {
		t.Errorf("unknown profile: got %v", err)
	}
}

func TestScheduleRefused(t *testing.T) {
	rule := "  - class: note\n    keep: 10y\n    basis: law\n"
	cases := []struct {
		name, yaml, says string
	}{
		{"duplicate class", "name: x\nrules:\n" + rule + rule, "a second rule for the class"},
		{"zero period", "name: x\nrules:\n  - class: note\n    keep: 0d\n    basis: law\n", "is zero"},
		{"typo in a period", "name: x\nrules:\n  - class: note\n    keep: 1000y\n    basis: law\n", "longer than 150 years"},
		{"no basis", "name: x\nrules:\n  - class: note\n    keep: 1y\n", "basis must cite"},
		{"hold without reason", "name: x\nrules:\n  - class: note\n    keep: 1y\n    basis: law\n    legal_hold: true\n", "needs hold_reason"},
		{"unknown field", "name: x\nrules:\n  - class: note\n    keep: 1y\n    basis: law\n    keep_forever: true\n", "keep_forever"},
		{"bad class", "name: x\nrules:\n  - class: Note!\n    keep: 1y\n    basis: law\n", "class must be"},
		{"no rules", "name: x\nrules: []\n", "no rules"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := lifecycle.ParseSchedule([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v, want an error saying %q", err, c.says)
			}
		})
	}
}

func TestLoadSchedule(t *testing.T) {
	dir := t.TempDir()
	s, err := lifecycle.LoadSchedule(dir, "us")
	if err != nil || s.Name != "us" {
		t.Fatalf("without retention.yaml: %v, %v; want the us profile", s.Name, err)
	}
	os.WriteFile(filepath.Join(dir, lifecycle.ScheduleFile), []byte("name: mine\nrules:\n  - class: note\n    keep: 3y\n    basis: hospital rule\n"), 0o600)
	if s, err = lifecycle.LoadSchedule(dir, "us"); err != nil || s.Name != "mine" {
		t.Fatalf("with retention.yaml: %v, %v; want it", s.Name, err)
	}
	os.WriteFile(filepath.Join(dir, lifecycle.ScheduleFile), []byte("name: mine\nrules:\n  - class: note\n    keep: 3q\n"), 0o600)
	if _, err = lifecycle.LoadSchedule(dir, "us"); err == nil || !strings.Contains(err.Error(), lifecycle.ScheduleFile) {
		t.Errorf("bad retention.yaml: got %v, want an error naming the file", err)
	}
}

// TestHoldsNeedAnOfficer: holds are placed and lifted by a security
// officer (or IT administrator), with a reason, on a patient that exists.
func TestHoldsNeedAnOfficer(t *testing.T) {
	s := lifecycletest.New(t, lifecycletest.SQLite, nil)
	ctx := context.Background()
	p := s.Register(t, person(synth.New(1)))
	cases := []struct {
		name string
		by   identity.Principal
		h    lifecycle.Hold
		says string
	}{
		{"a physician", s.Doctor, lifecycle.Hold{PatientID: p.ID, Reason: "litigation"}, "only a security officer"},
		{"no reason", s.Officer, lifecycle.Hold{PatientID: p.ID}, "hold reason is empty"},
		{"unknown patient", s.Officer, lifecycle.Hold{PatientID: "pt_nobody", Reason: "litigation"}, "not found"},
		{"control characters", s.Officer, lifecycle.Hold{Class: "note", Reason: "a\x1b[2Jb"}, "control characters"},
	}
	for _, c := range cases {
		if _, err := s.Engine.PlaceHold(ctx, c.by, c.h); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.says)
		}
	}
	h, err := s.Engine.PlaceHold(ctx, s.Officer, lifecycle.Hold{Class: "note", Reason: "regulator's inspection"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Engine.ReleaseHold(ctx, s.Officer, h.ID, "inspection closed"); err != nil {
		t.Fatal(err)
	}
	if err := s.Engine.ReleaseHold(ctx, s.Officer, h.ID, "again"); !errors.Is(err, lifecycle.ErrInvalid) {
		t.Errorf("releasing twice: got %v", err)
	}
	if hs, _ := s.Engine.Holds(ctx, false); len(hs) != 0 {
		t.Errorf("holds in force after release: %+v", hs)
	}
}
