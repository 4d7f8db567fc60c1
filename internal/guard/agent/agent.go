package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/medsec/medsec/internal/guard"
)

// Agent runs the process watcher and the integrity check on their
// intervals and hands every alert to the sink.
type Agent struct {
	cfg      Config
	watcher  *Watcher
	sink     Sink
	baseline Baseline
	now      func() time.Time
}

// New builds an agent: it hashes the allowed paths and takes (or loads)
// the integrity baseline now, so what changes afterwards is reported.
// src and stop come from SystemProcesses outside tests.
func New(ctx context.Context, cfg Config, src ProcessSource, stop Stopper, sink Sink) (*Agent, error) {
	allow, err := NewAllowlist(cfg.Allow)
	if err != nil {
		return nil, err
	}
	for _, p := range cfg.AllowPaths {
		if err := allow.AddPath(ctx, p); err != nil {
			return nil, err
		}
	}
	a := &Agent{cfg: cfg, watcher: NewWatcher(cfg.Mode, allow, src, stop), sink: sink, now: time.Now}
	if a.baseline, err = a.startingBaseline(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) startingBaseline(ctx context.Context) (Baseline, error) {
	if a.cfg.BaselineFile != "" {
		if b, err := LoadBaseline(a.cfg.BaselineFile); err == nil {
			return b, nil
		}
	}
	b, _ := TakeBaseline(ctx, a.cfg.Protect)
	if a.cfg.BaselineFile != "" {
		if err := SaveBaseline(a.cfg.BaselineFile, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Run checks until ctx ends; it returns nil then. An alert the sink
// refuses is an error: an agent that cannot report must not look healthy.
func (a *Agent) Run(ctx context.Context) error {
	procs := time.NewTicker(a.cfg.Interval)
	defer procs.Stop()
	files := time.NewTicker(a.cfg.IntegrityInterval)
	defer files.Stop()
	if err := a.CheckProcesses(ctx); err != nil {
		return err
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-procs.C:
			err = a.CheckProcesses(ctx)
		case <-files.C:
			err = a.CheckIntegrity(ctx)
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// CheckProcesses runs one process check and sends its alerts.
func (a *Agent) CheckProcesses(ctx context.Context) error {
	alerts, err := a.watcher.Check(ctx)
	if err != nil {
		return err
	}
	return a.send(ctx, alerts)
}

// CheckIntegrity compares the protected directories with the baseline,
// sends an alert per change, and makes the new state the baseline so each
// change is reported once.
func (a *Agent) CheckIntegrity(ctx context.Context) error {
	now, errs := TakeBaseline(ctx, a.cfg.Protect)
	if ctx.Err() != nil {
		return nil
	}
	var alerts []Alert
	for _, c := range Compare(a.baseline, now) {
		alerts = append(alerts, c.Alert(a.now()))
	}
	for _, err := range errs {
		alerts = append(alerts, Alert{Time: a.now(), Kind: IntegrityError, Severity: guard.Medium, Reason: err.Error()})
	}
	a.baseline = now
	if a.cfg.BaselineFile != "" {
		if err := SaveBaseline(a.cfg.BaselineFile, now); err != nil {
			return err
		}
	}
	return a.send(ctx, alerts)
}

func (a *Agent) send(ctx context.Context, alerts []Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	if err := a.sink.Send(ctx, alerts); err != nil {
		return fmt.Errorf("report %d alerts: %w", len(alerts), err)
	}
	return nil
}

// Main runs "medsec guard agent --config FILE", writing alerts as JSON
// lines to stdout, and to the hospital server when the configuration
// names one, until ctx ends. The CLI wires it.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("guard agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "agent configuration file (YAML)")
	if err := fs.Parse(args); err != nil || *path == "" {
		fmt.Fprintln(stderr, "usage: medsec guard agent --config FILE")
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err == nil {
		err = run(ctx, cfg, stdout, stderr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "medsec guard agent: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	src, stop, err := SystemProcesses()
	if err != nil {
		return err
	}
	sink, remote, err := sinkFor(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	a, err := New(ctx, cfg, src, stop, sink)
	if err != nil {
		return err
	}
	if remote != nil {
		go flushEvery(ctx, remote, FlushInterval)
		defer finalFlush(remote)
	}
	return a.Run(ctx)
}

// FlushInterval is how often alerts waiting for the server are retried.
const FlushInterval = 30 * time.Second

// sinkFor writes alerts to stdout and, when a server is configured, sends
// them there too.
func sinkFor(cfg Config, stdout, stderr io.Writer) (Sink, *Remote, error) {
	local := &JSONLines{W: stdout}
	if cfg.Server == nil {
		return local, nil, nil
	}
	remote, err := NewRemote(*cfg.Server)
	if err != nil {
		return nil, nil, err
	}
	remote.Warn = func(err error) { fmt.Fprintf(stderr, "medsec guard agent: %v; alerts wait and are sent again\n", err) }
	return Tee{local, remote}, remote, nil
}

func flushEvery(ctx context.Context, r *Remote, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.Pending() > 0 {
				if err := r.Flush(ctx); err != nil && r.Warn != nil {
					r.Warn(err)
				}
			}
		}
	}
}

// finalFlush gives waiting alerts one last chance when the agent stops.
func finalFlush(r *Remote) {
	if r.Pending() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil && r.Warn != nil {
		r.Warn(fmt.Errorf("%d alerts were not delivered before the agent stopped: %w", r.Pending(), err))
	}
}
