package demo

import (
	"context"
	"strings"
	"testing"
)

// TestDemoImaging checks the PACS step: the clean study stored and read
// back with zeroed preambles, the polyglot held with the reason, and the
// patient's name (which the DICOM files carry) nowhere in plaintext.
func TestDemoImaging(t *testing.T) {
	rep, err := Run(context.Background(), Options{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	im := rep.Imaging
	if im.Stored != 4 || im.Studies != 1 || im.Quarantined != 1 || im.ReadBack != 4 || !im.PreambleZeroed {
		t.Errorf("imaging %+v, want 4 stored in 1 study, read back with zero preambles, 1 quarantined", im)
	}
	if len(im.Why) != 1 || !strings.Contains(im.Why[0], "dicom-preamble (critical)") || !strings.Contains(im.Why[0], "CVE-2019-11687") {
		t.Errorf("why %q, want the polyglot's preamble finding", im.Why)
	}
	if rep.Plaintext.Hits != 0 {
		t.Errorf("plaintext hits %v", rep.Plaintext.Where)
	}
}
