package guard

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain_(t *testing.T) {
	root := writeTree(t, map[string][]byte{
		"DICOM/IM1": cleanDICOM("1"),
		"DICOM/IM2": part10(peStub(), tsExplicitLittle, encode(mrDataset("2"), true, binary.LittleEndian)),
	})
	clean := writeTree(t, map[string][]byte{"DICOM/IM1": cleanDICOM("1")})
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"polyglot", []string{root}, ExitMalicious, []string{
			filepath.Join(root, "DICOM/IM2") + ": dicom-preamble: critical: DICOM preamble holds a Windows PE executable header",
			"scanned 2 files", "MALICIOUS: 1 files must not be imported"}},
		{"clean", []string{clean}, ExitClean, []string{"scanned 1 files", "findings: critical 0, high 0, medium 0, low 0, info 0; clean"}},
		{"json", []string{"--json", root}, ExitMalicious, []string{`"severity": "critical"`, `"malicious_files": 1`}},
		{"no paths", nil, ExitError, nil},
		{"bad deny list", []string{"--deny", filepath.Join(root, "missing"), root}, ExitError, nil},
		{"clamd down", []string{"--clamd", "unix:" + filepath.Join(root, "no.sock"), root}, ExitError, nil},
		// A mistyped path or an unmounted CD is an error, not a clean scan;
		// the paths that exist are still scanned.
		{"missing path", []string{filepath.Join(root, "nowhere")}, ExitError, nil},
		{"missing beside clean", []string{filepath.Join(root, "nowhere"), clean}, ExitError, []string{"scanned 1 files"}},
		{"missing beside malicious", []string{filepath.Join(root, "nowhere"), root}, ExitMalicious, []string{"MALICIOUS: 1 files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.wantCode, errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep, err := New(Config{}).ScanReader(context.Background(), "x.jpg", bytes.NewReader(append(peStub(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	must(t, rep.WriteJSON(&buf))
	var back Report
	must(t, json.Unmarshal(buf.Bytes(), &back))
	if diff := cmpDiff(rep.Findings(), back.Findings()); diff != "" {
		t.Errorf("findings after a JSON round trip (-want +got):\n%s", diff)
	}
	if back.Summary.Findings[Critical] != 1 {
		t.Errorf("summary critical = %d, want 1", back.Summary.Findings[Critical])
	}
}

// Permission errors: a file and a directory the scanner cannot read each
// get a finding, and the readable file beside them is still scanned. Root
// reads everything, so as root the test reruns itself as nobody.
func TestScanUnreadable(t *testing.T) {
	if dir := os.Getenv("MEDSEC_GUARD_UNREADABLE_DIR"); dir != "" {
		rep := scanTree(t, Config{}, dir)
		json.NewEncoder(os.Stdout).Encode(reduce(t, rep, dir))
		return
	}
	parent, err := os.MkdirTemp("", "unreadable")
	must(t, err)
	t.Cleanup(func() { os.Chmod(filepath.Join(parent, "media", "locked"), 0o755); os.RemoveAll(parent) })
	must(t, os.Chmod(parent, 0o755))
	root := filepath.Join(parent, "media")
	for name, data := range map[string][]byte{"ok.txt": []byte("fine"), "secret.dcm": cleanDICOM("1"), "locked/IM1": cleanDICOM("2")} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, name), data, 0o644))
	}
	must(t, os.Chmod(filepath.Join(root, "secret.dcm"), 0))
	must(t, os.Chmod(filepath.Join(root, "locked"), 0))
	want := []got{{"locked", DetectUnreadable, Medium}, {"secret.dcm", DetectUnreadable, Medium}}
	var gotF []got
	if os.Geteuid() != 0 {
		gotF = reduce(t, scanTree(t, Config{}, root), root)
	} else {
		gotF = runAsNobody(t, parent, root)
	}
	if diff := cmpDiff(want, gotF); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func runAsNobody(t *testing.T, parent, root string) []got {
	t.Helper()
	self, err := os.Executable()
	must(t, err)
	bin := filepath.Join(parent, "guard.test")
	data, err := os.ReadFile(self)
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	cmd := exec.Command(bin, "-test.run=^TestScanUnreadable$")
	cmd.Env = append(os.Environ(), "MEDSEC_GUARD_UNREADABLE_DIR="+root)
	cmd.Dir = parent
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rerun as nobody: %v\n%s", err, out)
	}
	var res []got
	line, _, _ := bytes.Cut(out, []byte("\n"))
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatalf("rerun output %q: %v", out, err)
	}
	return res
}
