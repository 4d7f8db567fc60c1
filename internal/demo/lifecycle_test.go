package demo

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoLifeCycle checks the end of the life cycle as the demo reports
// it: the three provision flows, the pharmacy's side, the erasure, and the
// data map before and after — and the JSON keys the issue names.
func TestDemoLifeCycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h")
	rep, err := Run(context.Background(), Options{Dir: dir, Passphrase: []byte("demo life-cycle passphrase"), KDF: fastKDF, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Provision
	if !p.Opened || !p.TamperDetected || !p.ReceiptImported {
		t.Errorf("provision %+v, want opened, tamper detected, receipt imported", p)
	}
	for _, f := range p.Flows {
		if f.Outcome != "sent" {
			t.Errorf("flow to %s: %s", f.Recipient, f.Outcome)
		}
	}
	e := rep.Erasure
	if e.Patient == "" || e.PlaintextLeft != 0 || !e.AuditVerified || e.CopiesOutside != 1 || !strings.Contains(e.Refused, "kr/note") {
		t.Errorf("erasure %+v", e)
	}
	if len(rep.Trace.Before) < 3 || !strings.HasPrefix(rep.Trace.After[0], "destroyed on ") {
		t.Errorf("trace before %q after %q", rep.Trace.Before, rep.Trace.After)
	}
	raw, _ := json.Marshal(rep)
	var shape struct {
		Provision map[string]any `json:"provision"`
		Erasure   map[string]any `json:"erasure"`
	}
	json.Unmarshal(raw, &shape)
	for _, k := range []string{"opened", "tamper_detected", "receipt_imported"} {
		if shape.Provision[k] != true {
			t.Errorf("provision.%s = %v, want true", k, shape.Provision[k])
		}
	}
	if shape.Erasure["plaintext_left"] != float64(0) || shape.Erasure["audit_verified"] != true || shape.Erasure["patient"] == "" {
		t.Errorf("erasure JSON %v", shape.Erasure)
	}
}
