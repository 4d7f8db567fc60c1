package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/medsec/medsec/internal/guard"
)

// Watcher decides about processes: it knows the allowlist and the mode,
// and nothing about the operating system.
type Watcher struct {
	mode    Mode
	allow   *Allowlist
	src     ProcessSource
	stop    Stopper
	self    int
	now     func() time.Time
	digests map[ExeKey]string // cache: one hash per binary version
	alerted map[int]ExeKey    // processes already reported, against repeats
}

// NewWatcher returns a watcher; stop may be nil in alert mode.
func NewWatcher(mode Mode, allow *Allowlist, src ProcessSource, stop Stopper) *Watcher {
	return &Watcher{mode: mode, allow: allow, src: src, stop: stop, self: os.Getpid(), now: time.Now,
		digests: map[ExeKey]string{}, alerted: map[int]ExeKey{}}
}

// Check looks at every process once and returns the alerts, each process
// reported once while it keeps running the same binary.
func (w *Watcher) Check(ctx context.Context) ([]Alert, error) {
	procs, err := w.src.Processes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	live := make(map[int]bool, len(procs))
	var alerts []Alert
	for _, p := range procs {
		live[p.PID] = true
		if a, ok := w.judge(ctx, p); ok {
			alerts = append(alerts, a)
		}
	}
	for pid := range w.alerted {
		if !live[pid] {
			delete(w.alerted, pid)
		}
	}
	return alerts, nil
}

func (w *Watcher) judge(ctx context.Context, p Process) (Alert, bool) {
	if k, ok := w.alerted[p.PID]; p.PID == w.self || ok && k == p.Key {
		return Alert{}, false
	}
	digest, err := w.digest(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Alert{}, false // exited meanwhile
	}
	a := Alert{Time: w.now(), PID: p.PID, Exe: p.Exe, SHA256: digest}
	if err != nil {
		w.alerted[p.PID] = p.Key
		a.Kind, a.Severity, a.Reason = ProcessUnverified, guard.Medium, fmt.Sprintf("cannot read the binary to check it (%v); run the agent as root", err)
		return a, true
	}
	if _, ok := w.allow.Allowed(digest); ok {
		return Alert{}, false
	}
	w.alerted[p.PID] = p.Key
	return w.act(ctx, p, a), true
}

// act reports, and in enforce mode stops, a process not on the list.
func (w *Watcher) act(ctx context.Context, p Process, a Alert) Alert {
	a.Kind, a.Severity, a.Reason = ProcessNotAllowed, guard.High, "executable is not on the allowlist"
	switch {
	case w.mode != ModeEnforce:
		a.Reason += "; alert mode, so it keeps running"
	case p.PID <= 1:
		a.Reason += "; PID 1 is never stopped"
	default:
		if err := w.stop.Stop(ctx, p); err != nil {
			a.Kind, a.Reason = ProcessStopFailed, a.Reason+fmt.Sprintf("; stopping it failed: %v", err)
			return a
		}
		a.Kind, a.Reason = ProcessStopped, a.Reason+"; stopped with SIGKILL"
	}
	return a
}

func (w *Watcher) digest(p Process) (string, error) {
	if d, ok := w.digests[p.Key]; ok && p.Key != (ExeKey{}) {
		return d, nil
	}
	rc, err := w.src.OpenExe(p)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	d, err := hashReader(rc)
	if err != nil {
		return "", err
	}
	if p.Key != (ExeKey{}) {
		w.digests[p.Key] = d
	}
	return d, nil
}
