package dataset

import (
	"os"
	"strings"
	"testing"
)

// TestREADMESpec parses the example spec of the README's "AI datasets"
// section, so the documentation cannot drift from what medsec accepts.
func TestREADMESpec(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## AI datasets")
	if !ok {
		t.Fatal("the README has no AI datasets section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("the AI datasets section has no yaml example")
	}
	block, _, _ = strings.Cut(block, "```")
	s, err := ParseSpec([]byte(block), nil, ".")
	if err != nil {
		t.Fatalf("the README's example spec: %v", err)
	}
	if s.Purpose != PurposeTraining || len(s.Fields) == 0 {
		t.Errorf("parsed %+v", s)
	}
}
