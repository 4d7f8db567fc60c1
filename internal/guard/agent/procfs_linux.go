//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ProcFS lists processes from a Linux /proc.
type ProcFS struct {
	Root string // "/proc" unless testing
}

// Processes lists the processes that run a binary; kernel threads, and
// processes that exit while being listed, are left out.
func (p ProcFS) Processes(ctx context.Context) ([]Process, error) {
	entries, err := os.ReadDir(p.root())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.root(), err)
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if proc, ok := p.process(pid); ok {
			out = append(out, proc)
		}
	}
	return out, nil
}

func (p ProcFS) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

func (p ProcFS) exeLink(pid int) string { return filepath.Join(p.root(), strconv.Itoa(pid), "exe") }

func (p ProcFS) process(pid int) (Process, bool) {
	exe, err := os.Readlink(p.exeLink(pid))
	if err != nil {
		return Process{}, false
	}
	key, err := exeKey(p.exeLink(pid))
	if err != nil {
		return Process{}, false
	}
	return Process{PID: pid, Exe: exe, Key: key}, true
}

// exeKey stats the binary behind an exe link (the link is followed to the
// file the kernel loaded, even if it was deleted since).
func exeKey(link string) (ExeKey, error) {
	st, err := os.Stat(link)
	if err != nil {
		return ExeKey{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ExeKey{}, errors.New("no stat data")
	}
	return ExeKey{Dev: uint64(sys.Dev), Ino: sys.Ino, MTime: sys.Mtim.Nano(), CTime: sys.Ctim.Nano(), Size: sys.Size}, nil
}

// OpenExe opens /proc/PID/exe: the binary as loaded, not whatever now
// sits at its path.
func (p ProcFS) OpenExe(proc Process) (io.ReadCloser, error) {
	f, err := os.Open(p.exeLink(proc.PID))
	if errors.Is(err, syscall.ESRCH) {
		err = fs.ErrNotExist
	}
	return f, err
}

// Killer stops processes with SIGKILL through a pidfd, after checking
// that the PID still runs the binary that was judged, so a reused PID is
// never hit.
type Killer struct {
	Proc ProcFS
}

// Stop kills p. PID 1 and the agent itself are refused with ErrProtected.
func (k Killer) Stop(_ context.Context, p Process) error {
	if p.PID <= 1 || p.PID == os.Getpid() {
		return fmt.Errorf("stop pid %d: %w", p.PID, ErrProtected)
	}
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		return fmt.Errorf("stop pid %d: %w", p.PID, err)
	}
	defer unix.Close(fd)
	if key, err := exeKey(k.Proc.exeLink(p.PID)); err != nil || key != p.Key {
		return fmt.Errorf("stop pid %d: %w", p.PID, ErrChanged)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return fmt.Errorf("stop pid %d: %w", p.PID, err)
	}
	return nil
}

// SystemProcesses returns this operating system's process source and stopper.
func SystemProcesses() (ProcessSource, Stopper, error) {
	src := ProcFS{Root: "/proc"}
	return src, Killer{Proc: src}, nil
}
