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
// recorded in the Summary and the run goes on; an output file appears only
// complete (written to a temporary file, synced, then renamed). progress,
// when not nil, is called after each file from one goroutine. The error is
// for the run itself (unreadable input directory, cancelled context).
func (d *Deidentifier) Dir(ctx context.Context, inDir, outDir string, progress func(done, total int)) (Summary, error) {
	if err := checkDirs(inDir, outDir); err != nil {
		return Summary{}, err
	}
	files, skipped, err := listFiles(inDir)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Files: len(files), Skipped: skipped}
	jobs := make(chan string)
	results := make(chan FileError)
	var wg sync.WaitGroup
	for range d.opts.Workers {
		wg.Go(func() {
			for rel := range jobs {
				results <- FileError{Path: rel, Err: d.dirFile(ctx, inDir, outDir, rel)}
			}
		})
	}
	go feed(ctx, files, jobs)
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		sum.add(r)
		if progress != nil {
			progress(sum.Written+sum.Failed, sum.Files)
		}
	}
	return sum, ctx.Err()
}

func (s *Summary) add(r FileError) {
	if r.Err == nil {
		s.Written++
		return
	}
	s.Failed++
	s.Failures = append(s.Failures, r)
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

// dirFile de-identifies one file of a Dir run.
func (d *Deidentifier) dirFile(ctx context.Context, inDir, outDir, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(inDir, rel))
	if err != nil {
		return err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > d.opts.MaxFileSize {
		return fmt.Errorf("%w: file of %d bytes", ErrLimit, info.Size())
	}
	dst := filepath.Join(outDir, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".medsec-deid-*")
	if err != nil {
		return err
	}
	if err := d.writeTemp(ctx, f, tmp); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func (d *Deidentifier) writeTemp(ctx context.Context, in *os.File, tmp *os.File) error {
	_, err := d.File(ctx, in, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	return errors.Join(err, tmp.Close())
}
