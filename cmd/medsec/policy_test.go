package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/demo"
	"github.com/medsec/medsec/internal/keys"
)

// TestPolicyExplainDestroyedPatient: the policy may allow a read of a
// patient who was crypto-shredded; explain says the data is gone anyway.
func TestPolicyExplainDestroyedPatient(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h")
	pass := "explain test passphrase"
	rep, err := demo.Run(context.Background(), demo.Options{Dir: dir, Passphrase: []byte(pass), Keep: true,
		KDF: &keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("medsec", "policy", "explain", "--data", dir, "--user", "dr.kim", "--patient", rep.Destruction.Pseudonym)
	cmd.Env = append(os.Environ(), "MEDSEC_PASSPHRASE="+pass)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("policy explain: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "note: ") || !strings.Contains(string(out), "destroyed on") || !strings.Contains(string(out), "every read fails") {
		t.Errorf("explain of a destroyed patient does not say so:\n%s", out)
	}
	alive := exec.Command("medsec", "policy", "explain", "--data", dir, "--user", "dr.kim", "--patient", rep.Patients[0].ID)
	alive.Env = cmd.Env
	out, err = alive.CombinedOutput()
	if err != nil || strings.Contains(string(out), "note: ") {
		t.Errorf("policy explain of a living patient: %v\n%s", err, out)
	}
}
