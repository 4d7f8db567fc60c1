package dicomdeid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrOutputInInput is returned by Dir when the output directory is the input
// directory or inside it: outputs would be mixed with, or overwrite, the
// originals. Choose an output directory elsewhere.
var ErrOutputInInput = errors.New("output directory inside input directory")

// Summary is the outcome of a Dir run.
type Summary struct {
	Files    int // regular files found under the input directory
	Written  int // de-identified files written
	Failed   int // files that could not be de-identified; see Failures
	Skipped  int // entries that are not regular files (symlinks, devices)
	Failures []FileError
}

// FileError is one file that failed, by its path relative to the input
// directory. Err wraps one of the package's sentinel errors where one
// applies.
type FileError struct {
	Path string
	Err  error
}

func (e FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Dir de-identifies every regular file under inDir into the same relative
// path under outDir, Options.Workers files at a time. A file that fails is
// recorded in the Summary and the run goes on. An output file appears only
// complete and on disk: it is written under a temporary name, and batches
// of them are synced with one file-system sync, then renamed into place.
// progress, when not nil, is called after each file from one goroutine.
// The error is for the run itself (unreadable input directory, cancelled
// context).
func (d *Deidentifier) Dir(ctx context.Context, inDir, outDir string, progress func(done, total int)) (Summary, error) {
	if err := checkDirs(inDir, outDir); err != nil {
		return Summary{}, err
	}
	files, skipped, err := listFiles(inDir)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Files: len(files), Skipped: skipped}
	results := d.startWorkers(ctx, inDir, outDir, files)
	var batch []pendingFile
	done := 0
	for r := range results {
		done++
		if r.err != nil {
			sum.fail(r.rel, r.err)
		} else if batch = append(batch, r); len(batch) == commitBatch {
			sum.commit(outDir, batch)
			batch = batch[:0]
		}
		if progress != nil {
			progress(done, sum.Files)
		}
	}
	sum.commit(outDir, batch)
	return sum, ctx.Err()
}

// commitBatch is how many outputs share one file-system sync: one sync per
// file would cost more than de-identifying it.
const commitBatch = 64

// pendingFile is an output written under a temporary name.
type pendingFile struct {
	rel, tmp, dst string
	err           error
}

func (d *Deidentifier) startWorkers(ctx context.Context, inDir, outDir string, files []string) <-chan pendingFile {
	jobs := make(chan string)
	results := make(chan pendingFile)
	var wg sync.WaitGroup
	for range d.opts.Workers {
		wg.Go(func() {
			for rel := range jobs {
				results <- d.dirFile(ctx, inDir, outDir, rel)
			}
		})
	}
	go feed(ctx, files, jobs)
	go func() { wg.Wait(); close(results) }()
	return results
}

func (s *Summary) fail(rel string, err error) {
	s.Failed++
	s.Failures = append(s.Failures, FileError{Path: rel, Err: err})
}

// commit makes a batch of outputs durable, then visible.
func (s *Summary) commit(outDir string, batch []pendingFile) {
	if len(batch) == 0 {
		return
	}
	err := syncOutputs(outDir, batch)
	for _, f := range batch {
		if err == nil {
			err1 := os.Rename(f.tmp, f.dst)
			if err1 == nil {
				s.Written++
				continue
			}
			s.fail(f.rel, err1)
		} else {
			s.fail(f.rel, fmt.Errorf("sync outputs: %w", err))
		}
		os.Remove(f.tmp)
	}
}

func feed(ctx context.Context, files []string, jobs chan<- string) {
	defer close(jobs)
	for _, f := range files {
		select {
		case jobs <- f:
		case <-ctx.Done():
			return
		}
	}
}

func checkDirs(inDir, outDir string) error {
	in, err1 := filepath.Abs(inDir)
	out, err2 := filepath.Abs(outDir)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("de-identify directory: %w", err)
	}
	if rel, err := filepath.Rel(in, out); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return ErrOutputInInput
	}
	return nil
}

// listFiles walks inDir without following symbolic links: a CD or USB tree
// may hold link loops, and a link may point outside the tree.
func listFiles(inDir string) (files []string, skipped int, err error) {
	err = filepath.WalkDir(inDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		if !e.Type().IsRegular() {
			skipped++
			return nil
		}
		rel, err := filepath.Rel(inDir, path)
		files = append(files, rel)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", inDir, err)
	}
	return files, skipped, nil
}

// dirFile de-identifies one file of a Dir run into a temporary file next
// to its destination.
func (d *Deidentifier) dirFile(ctx context.Context, inDir, outDir, rel string) pendingFile {
	p := pendingFile{rel: rel, dst: filepath.Join(outDir, rel)}
	p.tmp, p.err = d.writeTemp(ctx, filepath.Join(inDir, rel), p.dst)
	return p
}

func (d *Deidentifier) writeTemp(ctx context.Context, src, dst string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if info, err := in.Stat(); err == nil && info.Size() > d.opts.MaxFileSize {
		return "", fmt.Errorf("%w: file of %d bytes", ErrLimit, info.Size())
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".medsec-deid-*")
	if err != nil {
		return "", err
	}
	_, err = d.File(ctx, in, tmp)
	if err = errors.Join(err, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}
