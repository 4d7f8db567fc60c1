package demo

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDeviceReadingsReachTheHospital runs the demo's PHD step on a fresh
// hospital under the shipped policy: every reading the device sent is
// stored and traced, every forged message refused.
func TestDeviceReadingsReachTheHospital(t *testing.T) {
	ctx := context.Background()
	opt := Options{Dir: filepath.Join(t.TempDir(), "h"), Passphrase: []byte("demo test passphrase"), KDF: fastKDF}
	s, err := newScenario(ctx, &opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.cleanup()
	for _, step := range []func(context.Context) error{s.hireStaff, s.registerPatients, s.sendDeviceReadings} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := s.rep.PHD
	if r.Sent != phdMessages*phdReadings || r.Stored != r.Sent {
		t.Errorf("sent %d, stored %d; want %d both", r.Sent, r.Stored, phdMessages*phdReadings)
	}
	if r.RejectedForged != 3 || !slices.Contains(r.Refusals, "bad-signature") || !slices.Contains(r.Refusals, "certificate-mismatch") {
		t.Errorf("forgeries: %d refused (%v), want 3 with bad-signature and certificate-mismatch", r.RejectedForged, r.Refusals)
	}
	if !strings.HasPrefix(r.Provenance, "author HEM-7600T-0001 → informant gw-loopback → verifier") {
		t.Errorf("provenance chain %q", r.Provenance)
	}
	n, hits, err := ScanPlaintext(opt.Dir, Needles(s.rep.Patients))
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 0 {
		t.Errorf("plaintext PHI in %d of %d files after the PHD step: %v", len(hits), n, hits)
	}
}
