package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/guard"
)

// Kind names what an alert is about.
type Kind string

// Alert kinds. They appear in audit records and never change once shipped.
const (
	ProcessNotAllowed Kind = "process-not-allowed"
	ProcessStopped    Kind = "process-stopped"
	ProcessStopFailed Kind = "process-stop-failed"
	ProcessUnverified Kind = "process-unverified"
	FileModified      Kind = "file-modified"
	FileAdded         Kind = "file-added"
	FileRemoved       Kind = "file-removed"
	FileOwnerChanged  Kind = "file-owner-changed"
	FileModeChanged   Kind = "file-mode-changed"
	IntegrityError    Kind = "integrity-error"
)

// Alert is one thing the security officer must see, as a value with a
// reason a person can act on.
type Alert struct {
	Time     time.Time      `json:"time"`
	Kind     Kind           `json:"kind"`
	Severity guard.Severity `json:"severity"`
	PID      int            `json:"pid,omitempty"`
	Exe      string         `json:"exe,omitempty"`
	Path     string         `json:"path,omitempty"`
	SHA256   string         `json:"sha256,omitempty"`
	Reason   string         `json:"reason"`
}

func (a Alert) String() string {
	where := a.Path
	if a.PID != 0 {
		where = fmt.Sprintf("pid %d %s", a.PID, a.Exe)
	}
	return fmt.Sprintf("%s: %s: %s: %s", where, a.Kind, a.Severity, a.Reason)
}

// Sink receives alerts. The mutual-TLS sender to the hospital server is
// one implementation; JSONLines is the local one.
type Sink interface {
	Send(ctx context.Context, alerts []Alert) error
}

// JSONLines writes each alert as one JSON line, for a local log or stdout.
type JSONLines struct {
	mu sync.Mutex
	W  io.Writer
}

// Send writes alerts in order.
func (j *JSONLines) Send(_ context.Context, alerts []Alert) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	enc := json.NewEncoder(j.W)
	for _, a := range alerts {
		if err := enc.Encode(a); err != nil {
			return fmt.Errorf("write alert: %w", err)
		}
	}
	return nil
}
