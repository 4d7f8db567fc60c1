//go:build linux

package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testBinary copies /bin/sleep into a temp dir under a name of its own,
// so the test's process is the only one running it.
func testBinary(t *testing.T) (dir, bin, digest string) {
	t.Helper()
	dir = t.TempDir()
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Skipf("no /bin/sleep to copy: %v", err)
	}
	bin = filepath.Join(dir, "pacs-helper")
	must(t, os.WriteFile(bin, data, 0o755))
	digest, err = hashFile(bin)
	must(t, err)
	return dir, bin, digest
}

func startBinary(t *testing.T, bin string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "60")
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait until the kernel shows the new binary, not the forked test.
	for range 200 {
		if exe, _ := os.Readlink(filepath.Join("/proc", itoa(cmd.Process.Pid), "exe")); exe == bin {
			return cmd
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never ran %s", cmd.Process.Pid, bin)
	return nil
}

// underDir is the real /proc source, narrowed to processes whose binary
// lies in the test's own temp dir: an enforcing test must never touch
// another process on this machine.
type underDir struct {
	ProcFS
	dir string
}

func (u underDir) Processes(ctx context.Context) ([]Process, error) {
	all, err := u.ProcFS.Processes(ctx)
	var mine []Process
	for _, p := range all {
		if strings.HasPrefix(p.Exe, u.dir+string(filepath.Separator)) {
			mine = append(mine, p)
		}
	}
	return mine, err
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestWatcherOnRealProcesses(t *testing.T) {
	dir, bin, digest := testBinary(t)
	src := underDir{ProcFS{Root: "/proc"}, dir}
	ctx := context.Background()

	t.Run("alert mode reports once and lets it run", func(t *testing.T) {
		cmd := startBinary(t, bin)
		w := NewWatcher(ModeAlert, mustAllow(t), src, nil)
		alerts, err := w.Check(ctx)
		must(t, err)
		want := []Alert{{Kind: ProcessNotAllowed, PID: cmd.Process.Pid, Exe: bin, SHA256: digest}}
		if diff := cmp.Diff(want, alerts, ignoreTimeReason); diff != "" {
			t.Errorf("alerts (-want +got):\n%s", diff)
		}
		if again, _ := w.Check(ctx); len(again) != 0 {
			t.Errorf("second check: %v, want no repeat for the same process", again)
		}
		if !alive(cmd.Process.Pid) {
			t.Error("alert mode stopped the process")
		}
	})
	t.Run("allowlisted binary runs quietly", func(t *testing.T) {
		startBinary(t, bin)
		w := NewWatcher(ModeEnforce, mustAllow(t, AllowEntry{SHA256: digest, Name: "helper"}), src, Killer{Proc: src.ProcFS})
		if alerts, err := w.Check(ctx); err != nil || len(alerts) != 0 {
			t.Errorf("alerts %v, err %v; want none", alerts, err)
		}
	})
	t.Run("enforce mode kills it", func(t *testing.T) {
		cmd := startBinary(t, bin)
		w := NewWatcher(ModeEnforce, mustAllow(t), src, Killer{Proc: src.ProcFS})
		alerts, err := w.Check(ctx)
		must(t, err)
		if len(alerts) != 1 || alerts[0].Kind != ProcessStopped || alerts[0].PID != cmd.Process.Pid {
			t.Fatalf("alerts %v, want one process-stopped for pid %d", alerts, cmd.Process.Pid)
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("wait: %v, want killed by SIGKILL", err)
		}
	})
}

var ignoreTimeReason = cmpIgnore("Time", "Reason", "Severity")

func mustAllow(t *testing.T, entries ...AllowEntry) *Allowlist {
	t.Helper()
	a, err := NewAllowlist(entries)
	must(t, err)
	return a
}

func TestKillerRefuses(t *testing.T) {
	dir, bin, _ := testBinary(t)
	src := underDir{ProcFS{Root: "/proc"}, dir}
	k := Killer{Proc: src.ProcFS}
	for _, pid := range []int{1, os.Getpid()} {
		if err := k.Stop(context.Background(), Process{PID: pid}); !errors.Is(err, ErrProtected) {
			t.Errorf("Stop(pid %d) = %v, want ErrProtected", pid, err)
		}
	}
	// A PID whose binary is no longer the one judged is left alone.
	cmd := startBinary(t, bin)
	procs, err := src.Processes(context.Background())
	must(t, err)
	if len(procs) != 1 {
		t.Fatalf("processes %v, want the one test process", procs)
	}
	stale := procs[0]
	stale.Key.CTime--
	if err := k.Stop(context.Background(), stale); !errors.Is(err, ErrChanged) {
		t.Errorf("Stop(stale) = %v, want ErrChanged", err)
	}
	if !alive(cmd.Process.Pid) {
		t.Error("a stale judgement killed the process")
	}
}

// recordingStopper stands in for the Killer where the real one would be
// destructive to run: the watcher must not even ask to stop PID 1 or itself.
type recordingStopper struct{ pids []int }

func (r *recordingStopper) Stop(_ context.Context, p Process) error {
	r.pids = append(r.pids, p.PID)
	return nil
}

type fixedSource []Process

func (f fixedSource) Processes(context.Context) ([]Process, error) { return f, nil }
func (f fixedSource) OpenExe(p Process) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("binary of " + p.Exe)), nil
}

func TestWatcherNeverStopsInitOrItself(t *testing.T) {
	stop := &recordingStopper{}
	src := fixedSource{{PID: 1, Exe: "/sbin/init"}, {PID: os.Getpid(), Exe: "/usr/bin/medsec"}, {PID: 4242, Exe: "/opt/vendor/unknown"}}
	alerts, err := NewWatcher(ModeEnforce, mustAllow(t), src, stop).Check(context.Background())
	must(t, err)
	if diff := cmp.Diff([]int{4242}, stop.pids); diff != "" {
		t.Errorf("stopped (-want +got):\n%s", diff)
	}
	var kinds []string
	for _, a := range alerts {
		kinds = append(kinds, itoa(a.PID)+":"+string(a.Kind))
	}
	if diff := cmp.Diff([]string{"1:process-not-allowed", "4242:process-stopped"}, kinds); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

type collect struct {
	mu     sync.Mutex
	alerts []Alert
}

func (c *collect) Send(_ context.Context, a []Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = append(c.alerts, a...)
	return nil
}

func (c *collect) kinds() map[Kind]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[Kind]int{}
	for _, a := range c.alerts {
		m[a.Kind]++
	}
	return m
}

// The agent end to end, from its YAML file: it stops the unknown process
// and reports the change to the protected directory.
func TestAgentRun(t *testing.T) {
	dir, bin, _ := testBinary(t)
	protected := t.TempDir()
	must(t, os.WriteFile(filepath.Join(protected, "viewer.cfg"), []byte("port=104\n"), 0o644))
	cfg, err := ParseConfig(strings.NewReader("mode: enforce\ninterval: 20ms\nintegrity_interval: 20ms\nprotect: [" + protected + "]\n" +
		"baseline_file: " + filepath.Join(t.TempDir(), "baseline.json") + "\n"))
	must(t, err)
	src := underDir{ProcFS{Root: "/proc"}, dir}
	sink := &collect{}
	a, err := New(context.Background(), cfg, src, Killer{Proc: src.ProcFS}, sink)
	must(t, err)
	// Start the unknown program before the agent runs: an enforcing agent
	// may otherwise kill it before the test sees it exec.
	cmd := startBinary(t, bin)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	must(t, os.WriteFile(filepath.Join(protected, "viewer.cfg"), []byte("port=4444\n"), 0o644))
	deadline := time.Now().Add(10 * time.Second)
	for sink.kinds()[ProcessStopped] == 0 || sink.kinds()[FileModified] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alerts so far %v, want process-stopped and file-modified", sink.kinds())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the unknown process exited normally, want it killed")
	}
	if n := sink.kinds()[FileModified]; n != 1 {
		t.Errorf("file-modified alerts = %d, want exactly 1 (reported once)", n)
	}
}

func TestMainUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Errorf("exit %d stderr %q, want 2 and usage", code, errOut.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	must(t, os.WriteFile(bad, []byte("mode: block\n"), 0o644))
	if code := Main(context.Background(), []string{"--config", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "mode") {
		t.Errorf("exit %d stderr %q, want 1 and a mode error", code, errOut.String())
	}
}
