// Package clamdtest starts a real clamd (Debian's clamav-daemon) for tests
// outside package guard, such as the imaging import: on a unix socket in a
// temporary directory, with a signature database holding one benign test
// marker, never downloaded signatures. Tests skip loudly when clamd is not
// installed; .ci/run installs it.
package clamdtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/guard"
)

// Marker is the benign byte string the test database names
// "Medsec.Test.Marker". Put it in a file to make ClamAV flag it.
const Marker = "MEDSEC-CLAMDTEST-MARKER-7d1e4b20-not-malware"

// Signature is the name clamd reports for Marker.
const Signature = "Medsec.Test.Marker"

// Start runs clamd until the test ends and returns a client for it.
func Start(t testing.TB) *guard.Clamd {
	t.Helper()
	bin := lookup()
	if bin == "" {
		t.Skip("SKIPPING CLAMAV TEST: clamd is not installed. Install Debian's clamav-daemon (apt-get install -y clamav-daemon) to run it; .ci/run does.")
	}
	dir, err := os.MkdirTemp("", "clamd") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf, sock := writeConfig(t, dir)
	cmd := exec.Command(bin, "--config-file="+conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c, err := guard.NewClamd("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, c, dir, &out)
	return c
}

func lookup() string {
	if p, err := exec.LookPath("clamd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/clamd", "/usr/local/sbin/clamd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func writeConfig(t testing.TB, dir string) (conf, sock string) {
	t.Helper()
	db := filepath.Join(dir, "db")
	if err := os.MkdirAll(db, 0o755); err != nil {
		t.Fatal(err)
	}
	sig := Signature + ":0:*:" + hex.EncodeToString([]byte(Marker)) + "\n"
	if err := os.WriteFile(filepath.Join(db, "medsec-test.ndb"), []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(dir, "clamd.sock")
	text := fmt.Sprintf("LocalSocket %s\nDatabaseDirectory %s\nForeground yes\nTemporaryDirectory %s\nLogFile %s\nLogVerbose no\nBytecode no\n",
		sock, db, dir, filepath.Join(dir, "clamd.log"))
	if os.Geteuid() == 0 {
		text += "User root\n"
	}
	conf = filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf, sock
}

func waitReady(t testing.TB, c *guard.Clamd, dir string, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "clamd.log"))
			t.Fatalf("clamd did not answer PONG within 60s: %v\noutput: %s\nlog: %s", err, out.String(), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
