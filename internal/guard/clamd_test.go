package guard

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clamdMarker is a benign marker the test's own signature database names.
const clamdMarker = "MEDSEC-CLAMD-TEST-MARKER-0f9c2e7a-not-malware"

// startClamd runs a real clamd (Debian's clamav-daemon) on a unix socket
// in a temp dir, with a database holding only the test's signature. It
// never downloads signatures: freshclam is not involved.
func startClamd(t testing.TB, streamMax string) *Clamd {
	t.Helper()
	bin, err := exec.LookPath("clamd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/clamd", "/usr/local/sbin/clamd"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("SKIPPING CLAMAV TEST: clamd is not installed. Install Debian's clamav-daemon (apt-get install -y clamav-daemon) to run it; .ci/run does.")
	}
	dir, err := os.MkdirTemp("", "clamd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	must(t, os.MkdirAll(db, 0o755))
	must(t, os.WriteFile(filepath.Join(db, "medsec-test.ndb"),
		[]byte("Medsec.Test.Marker:0:*:"+hex.EncodeToString([]byte(clamdMarker))+"\n"), 0o644))
	sock := filepath.Join(dir, "clamd.sock")
	conf := fmt.Sprintf("LocalSocket %s\nDatabaseDirectory %s\nForeground yes\nTemporaryDirectory %s\nStreamMaxLength %s\nLogFile %s\nLogVerbose no\nBytecode no\n",
		sock, db, dir, streamMax, filepath.Join(dir, "clamd.log"))
	if os.Geteuid() == 0 {
		conf += "User root\n"
	}
	must(t, os.WriteFile(filepath.Join(dir, "clamd.conf"), []byte(conf), 0o644))
	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "clamd.conf"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c, err := NewClamd("unix:" + sock)
	must(t, err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "clamd.log"))
			t.Fatalf("clamd did not answer PONG within 60s: %v\nstderr: %s\nlog: %s", err, stderr.String(), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestClamd(t *testing.T) {
	c := startClamd(t, "1M")
	ctx := context.Background()
	v, err := c.Version(ctx)
	if err != nil || !strings.HasPrefix(v, "ClamAV ") {
		t.Errorf("Version = %q, %v; want ClamAV's version line", v, err)
	}
	infected := append([]byte("header of a benign test file\n"), clamdMarker...)
	c.StreamMaxLength = 1 << 20
	c.ChunkSize = 7 // many small chunks, to test the chunking
	verdict, err := c.Scan(ctx, bytes.NewReader(infected))
	if err != nil || !verdict.Infected || verdict.Signature != "Medsec.Test.Marker.UNOFFICIAL" {
		t.Errorf("Scan(marker) = %+v, %v; want Medsec.Test.Marker.UNOFFICIAL found", verdict, err)
	}
	c.ChunkSize = 64 << 10

	root := writeTree(t, map[string][]byte{
		"infected.txt": infected,
		"clean.dcm":    cleanDICOM("1"),
		"big.bin":      append(bytes.Repeat([]byte{'.'}, 2<<20), clamdMarker...),
	})
	rep := scanTree(t, Config{Clamd: c}, root)
	want := []got{
		{"big.bin", DetectClamAV, Low},
		{"infected.txt", DetectClamAV, Critical},
	}
	if diff := cmpDiff(want, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// A client that believes clamd takes more than it does gets clamd's
	// own refusal, as a finding that says ClamAV did not scan the file.
	c.StreamMaxLength = 8 << 20
	rep = scanTree(t, Config{Clamd: c}, filepath.Join(root, "big.bin"))
	f := rep.Findings()
	if len(f) != 1 || f[0].Severity != Medium || !strings.Contains(f[0].Reason, "ClamAV could not scan") {
		t.Errorf("findings %v, want one medium 'could not scan' finding", f)
	}
}

func TestClamdUnreachable(t *testing.T) {
	c, err := NewClamd("unix:" + filepath.Join(t.TempDir(), "none.sock"))
	must(t, err)
	if err := c.Ping(context.Background()); err == nil {
		t.Fatal("Ping to a missing socket succeeded")
	}
	root := writeTree(t, map[string][]byte{"a.txt": []byte("x")})
	rep := scanTree(t, Config{Clamd: c}, root)
	if diff := cmpDiff([]got{{"a.txt", DetectClamAV, Medium}}, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestNewClamd(t *testing.T) {
	tests := []struct{ in, network, address string }{
		{"unix:/run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl"},
		{"/run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl"},
		{"tcp:127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"localhost:3310", "tcp", "localhost:3310"},
	}
	for _, tt := range tests {
		c, err := NewClamd(tt.in)
		if err != nil || c.Network != tt.network || c.Address != tt.address {
			t.Errorf("NewClamd(%q) = %v, %v; want %s %s", tt.in, c, err, tt.network, tt.address)
		}
	}
	for _, bad := range []string{"unix:", "tcp:nohostport"} {
		if _, err := NewClamd(bad); err == nil {
			t.Errorf("NewClamd(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseClamReply(t *testing.T) {
	v, err := parseClamReply(ClamVerdict{}, "INSTREAM size limit exceeded. ERROR")
	if !errors.Is(err, ErrClamdReply) || v.Infected {
		t.Errorf("got %+v, %v; want ErrClamdReply", v, err)
	}
}
