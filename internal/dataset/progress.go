package dataset

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress receives a long job's progress: units (patients, files) done
// out of a total. Jobs call it from one goroutine.
type Progress interface {
	// Start begins a stage of total units (0 when unknown).
	Start(stage string, total int64)
	// Add counts n more units done.
	Add(n int64)
	// Finish ends the stage.
	Finish()
}

// NewProgress returns a Progress that draws a bar with rate and ETA on a
// terminal, or prints a plain line now and then (at most every interval,
// and at the end of each stage) when w is not a terminal: a log file or a
// CI job must not fill with redraws.
func NewProgress(w io.Writer, terminal bool, interval time.Duration) Progress {
	if terminal {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w, interval: interval, now: time.Now}
}

// NoProgress reports nothing.
type NoProgress struct{}

func (NoProgress) Start(string, int64) {}
func (NoProgress) Add(int64)           {}
func (NoProgress) Finish()             {}

type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *barProgress) Start(stage string, total int64) {
	if total <= 0 {
		total = -1 // a spinner
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(stage),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }))
}

func (p *barProgress) Add(n int64) {
	if p.bar != nil {
		p.bar.Add64(n)
	}
}

func (p *barProgress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

// lineProgress prints "stage: 1200/5000 (24%), 350/s, ETA 11s" lines.
type lineProgress struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	now      func() time.Time

	stage       string
	total, done int64
	start, last time.Time
}

func (p *lineProgress) Start(stage string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage, p.total, p.done = stage, total, 0
	p.start = p.now()
	p.last = p.start
}

func (p *lineProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.total > 0 && p.done >= p.total {
		return // Finish prints the last line
	}
	if now := p.now(); now.Sub(p.last) >= p.interval {
		p.last = now
		fmt.Fprintln(p.w, p.line(now))
	}
}

func (p *lineProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, p.line(p.now())+" done")
}

func (p *lineProgress) line(now time.Time) string {
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.done) / el
	}
	if p.total <= 0 {
		return fmt.Sprintf("%s: %d, %.0f/s", p.stage, p.done, rate)
	}
	s := fmt.Sprintf("%s: %d/%d (%d%%), %.0f/s", p.stage, p.done, p.total, 100*p.done/p.total, rate)
	if rate > 0 && p.done < p.total {
		eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}
