package agent

import (
	"context"
	"errors"
	"io"
)

// Process is one running process as a ProcessSource sees it.
type Process struct {
	PID int
	Exe string // path of the binary it runs
	Key ExeKey
}

// ExeKey identifies one version of a binary on disk, so its digest is
// computed once: a replaced or rewritten file gets a new key. The change
// time is in it because, unlike the modification time, no user can set it
// back after rewriting the file.
type ExeKey struct {
	Dev, Ino     uint64
	MTime, CTime int64 // nanoseconds
	Size         int64
}

// ProcessSource is the operating system's side of process control. Linux
// reads /proc; a Windows port lists processes with its own API.
type ProcessSource interface {
	// Processes lists running processes that run a binary. Processes
	// without one (kernel threads) are left out.
	Processes(ctx context.Context) ([]Process, error)
	// OpenExe opens the binary p runs, as the kernel loaded it.
	OpenExe(p Process) (io.ReadCloser, error)
}

// Stopper stops a process that must not run.
type Stopper interface {
	Stop(ctx context.Context, p Process) error
}

// ErrProtected means the process is PID 1 or the agent itself, which are
// never stopped.
var ErrProtected = errors.New("process is protected from stopping")

// ErrChanged means the PID now runs a different binary than the one
// judged (the process exited and its PID was reused); nothing was stopped.
var ErrChanged = errors.New("process changed since it was checked")
