package demo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoDataset: the demo builds a consented AI dataset, reports it as
// dataset {rows, k, manifest_verified} in its JSON, keeps it in the data
// directory with --data, and its files hold none of the demo patients'
// identifying values.
func TestDemoDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h")
	rep, err := Run(context.Background(), Options{Dir: dir, Passphrase: []byte("demo dataset passphrase"), KDF: fastKDF, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Dataset
	if d.Rows == 0 || d.K < 5 || !d.ManifestVerified || !d.TamperDetected || !d.StaleAfterWithdrawal || !d.TracedStale {
		t.Errorf("dataset report %+v", d)
	}
	if d.Consented >= d.Candidates || d.Rows > d.Consented || d.Risk > d.RiskLimit {
		t.Errorf("cohort %d candidates, %d consented, %d rows, risk %.3f/%.3f: want consent to filter and the risk within the limit",
			d.Candidates, d.Consented, d.Rows, d.Risk, d.RiskLimit)
	}
	raw, _ := json.Marshal(rep)
	var got struct {
		Dataset map[string]any `json:"dataset"`
	}
	json.Unmarshal(raw, &got)
	for _, k := range []string{"rows", "k", "manifest_verified"} {
		if _, ok := got.Dataset[k]; !ok {
			t.Errorf("the JSON report's dataset lacks %q: %v", k, got.Dataset)
		}
	}
	if !strings.HasPrefix(d.Dir, dir) {
		t.Fatalf("dataset kept at %s, not in the data directory %s", d.Dir, dir)
	}
	if _, hits, err := ScanPlaintext(d.Dir, Needles(rep.Patients)); err != nil || len(hits) > 0 {
		t.Errorf("dataset files hold the demo patients' values: %v %v", hits, err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "manifest.sig")); err != nil {
		t.Error(err)
	}
}
