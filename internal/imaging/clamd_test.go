package imaging_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/guard/clamdtest"
	"github.com/medsec/medsec/internal/imaging"
)

// TestImportWithClamd imports media with a real clamd configured: the
// study goes in, a file ClamAV flags (a benign marker its test database
// names) is quarantined with ClamAV's finding.
func TestImportWithClamd(t *testing.T) {
	c := clamdtest.Start(t)
	f := newFixture(t, guard.Config{Clamd: c})
	ins := study(t, 51, testMRN, 1, 2, nil)
	root := writeFiles(t, map[string][]byte{
		"DICOM/IM1": ins[0].Data, "DICOM/IM2": ins[1].Data,
		"VIEWER/HELP.TXT": []byte("help text " + clamdtest.Marker + " end"),
	})
	rep, err := f.in.Import(context.Background(), imaging.Request{Paths: []string{root}, Origin: "CD from Daegu hospital"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stored != 2 || rep.Quarantined != 1 {
		t.Fatalf("stored %d, quarantined %d; want 2 and 1: %+v", rep.Stored, rep.Quarantined, rep.Files)
	}
	items, err := f.in.Quarantined(context.Background(), f.officer, imaging.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || !slices.Contains(items[0].Detectors, guard.DetectClamAV) || !strings.Contains(items[0].Findings[0].Reason, clamdtest.Signature) {
		t.Errorf("quarantine %+v, want ClamAV's finding naming %s", items, clamdtest.Signature)
	}
}
