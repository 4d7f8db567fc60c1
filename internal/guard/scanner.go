package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound the work and memory one scan may spend on hostile input.
// A zero field takes its default from DefaultLimits.
type Limits struct {
	MaxArchiveDepth     int   // archives inside archives (an .iso holding a .zip is depth 2)
	MaxArchiveEntries   int   // entries in all archives under one top-level file
	MaxArchiveBytes     int64 // bytes inflated from all archives under one top-level file
	MaxCompressionRatio int64 // uncompressed:compressed for one zip entry
	RatioMinBytes       int64 // entries smaller than this may compress as well as they like
	MaxSpoolBytes       int64 // a nested archive read into memory for random access
	MaxDICOMDepth       int   // nested DICOM sequence levels
	MaxDICOMDIRRefs     int   // files one DICOMDIR may reference
}

// DefaultLimits suit a CD/DVD or USB stick of imaging studies.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveDepth:     4,
		MaxArchiveEntries:   100_000,
		MaxArchiveBytes:     16 << 30,
		MaxCompressionRatio: 100,
		RatioMinBytes:       1 << 20,
		MaxSpoolBytes:       64 << 20,
		MaxDICOMDepth:       16,
		MaxDICOMDIRRefs:     100_000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v, def int64) int64 {
		if v <= 0 {
			return def
		}
		return v
	}
	return Limits{
		MaxArchiveDepth:     int(pick(int64(l.MaxArchiveDepth), int64(d.MaxArchiveDepth))),
		MaxArchiveEntries:   int(pick(int64(l.MaxArchiveEntries), int64(d.MaxArchiveEntries))),
		MaxArchiveBytes:     pick(l.MaxArchiveBytes, d.MaxArchiveBytes),
		MaxCompressionRatio: pick(l.MaxCompressionRatio, d.MaxCompressionRatio),
		RatioMinBytes:       pick(l.RatioMinBytes, d.RatioMinBytes),
		MaxSpoolBytes:       pick(l.MaxSpoolBytes, d.MaxSpoolBytes),
		MaxDICOMDepth:       int(pick(int64(l.MaxDICOMDepth), int64(d.MaxDICOMDepth))),
		MaxDICOMDIRRefs:     int(pick(int64(l.MaxDICOMDIRRefs), int64(d.MaxDICOMDIRRefs))),
	}
}

// Config sets up a Scanner. The zero value scans with medsec's own
// detectors only.
type Config struct {
	DenyList *DenyList
	Clamd    *Clamd // nil: ClamAV is not used
	Limits   Limits
	Workers  int // files scanned at once; 0 means one per CPU
	// Progress, when set, is called after each file and once more when
	// the scan ends, from one goroutine at a time, so a CLI can drive a
	// progress bar.
	Progress func(Progress)
	// Inspect, when set, receives every file whose content was read to its
	// end (on the media, in an archive, in an image) with its result and a
	// way to read the content again while the scan still holds it open: an
	// entry of an archive cannot be reached once the scan moved on. The
	// import stores what passed and quarantines what failed from here.
	// It is called from the scan's workers, several at once; a container
	// comes after its entries. A second read counts against the archive
	// budget like the first, and a file on disk may have changed in
	// between: compare the SHA-256 of what is read with res.SHA256. open
	// is nil for an upload that cannot be read twice (ScanReader without
	// random access).
	Inspect func(ctx context.Context, res FileResult, open func() (io.ReadCloser, error))
}

// Progress is a snapshot of a running scan.
type Progress struct {
	Files     int   // files finished
	Bytes     int64 // bytes of finished files
	Found     int   // files found so far; final once WalkDone
	WalkDone  bool
	Malicious int    // finished files with a finding of high or above
	Path      string // the file just finished
}

// Scanner scans import media. It is safe for concurrent use.
type Scanner struct {
	cfg Config
	lim Limits
}

// New returns a scanner with cfg's limits filled in with defaults.
func New(cfg Config) *Scanner {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	return &Scanner{cfg: cfg, lim: cfg.Limits.withDefaults()}
}

// Scan scans files, directory trees (a mounted CD/DVD/USB), .iso images
// and zip archives. Problems with single files are findings in the report;
// the error is non-nil only when ctx ended the scan early, and the report
// then holds what was finished.
func (s *Scanner) Scan(ctx context.Context, paths ...string) (*Report, error) {
	run := s.start(ctx)
	go func() {
		defer run.walkDone()
		for _, p := range paths {
			s.walkPath(ctx, p, run)
		}
	}()
	return run.wait(ctx)
}

// ScanReader scans one upload of the import API. A reader with random
// access (*os.File, *bytes.Reader, *io.SectionReader) lets archives be
// opened in place; otherwise an archive is read into memory up to
// Limits.MaxSpoolBytes.
func (s *Scanner) ScanReader(ctx context.Context, name string, r io.Reader) (*Report, error) {
	run := s.start(ctx)
	go func() {
		defer run.walkDone()
		run.add(readerItem(name, r))
	}()
	return run.wait(ctx)
}

func readerItem(name string, r io.Reader) item {
	it := item{path: name, name: path.Base(name), size: -1, why: whyDICOM(name, nil)}
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			it.size = st.Size()
			it.ra = f
		}
	}
	if sr, ok := r.(interface {
		io.ReaderAt
		Size() int64
	}); ok {
		it.size, it.ra = sr.Size(), sr
	}
	it.open = func() (io.ReadCloser, error) { return io.NopCloser(r), nil }
	it.once = it.ra == nil
	if it.ra != nil {
		it.open = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(it.ra, 0, it.size)), nil }
	}
	return it
}

// run is one scan in progress: a walker feeds items to workers, and the
// caller's goroutine collects their results.
type run struct {
	s       *Scanner
	jobs    chan item
	results chan FileResult
	found   atomic.Int64
	walked  atomic.Bool
	workers sync.WaitGroup
	start   time.Time
}

func (s *Scanner) start(ctx context.Context) *run {
	r := &run{s: s, jobs: make(chan item, 64), results: make(chan FileResult, 64), start: time.Now()}
	for range s.cfg.Workers {
		r.workers.Add(1)
		go r.work(ctx)
	}
	r.workers.Add(1) // the walker
	go func() { r.workers.Wait(); close(r.results) }()
	return r
}

func (r *run) work(ctx context.Context) {
	defer r.workers.Done()
	for it := range r.jobs {
		if ctx.Err() != nil {
			continue
		}
		for _, res := range r.s.scanItem(ctx, it, nil) {
			r.results <- res
		}
	}
}

// add queues a file for the workers.
func (r *run) add(it item) {
	r.found.Add(1)
	r.jobs <- it
}

// report delivers a result the walker produced itself (an unreadable
// directory, a symlink loop).
func (r *run) report(res FileResult) {
	r.found.Add(1)
	r.results <- res
}

func (r *run) walkDone() {
	r.walked.Store(true)
	close(r.jobs)
	r.workers.Done()
}

func (r *run) wait(ctx context.Context) (*Report, error) {
	rep := &Report{Started: r.start}
	for res := range r.results {
		rep.add(res)
		r.progress(rep, res.Path)
	}
	r.progress(rep, "")
	sort.SliceStable(rep.Files, func(i, j int) bool { return rep.Files[i].Path < rep.Files[j].Path })
	rep.Summary.Duration = time.Since(r.start)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("scan stopped after %d files: %w", rep.Summary.Files, err)
	}
	return rep, nil
}

func (r *run) progress(rep *Report, path string) {
	if r.s.cfg.Progress != nil {
		r.s.cfg.Progress(Progress{Files: rep.Summary.Files, Bytes: rep.Summary.Bytes, Found: int(r.found.Load()),
			WalkDone: r.walked.Load(), Malicious: rep.Summary.MaliciousFiles, Path: path})
	}
}

// errReason renders an error for a person without repeating the path.
func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
