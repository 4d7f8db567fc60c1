package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxTreeDepth stops a directory walk that no real media needs.
const maxTreeDepth = 64

// walkPath scans one argument of Scan: a file, or a directory tree whose
// symbolic links are followed only while they stay inside it.
func (s *Scanner) walkPath(ctx context.Context, p string, r *run) {
	st, err := os.Stat(p)
	if err != nil {
		r.report(FileResult{Path: p, Size: -1, Findings: []Finding{linkOrUnreadable(p, err)}})
		return
	}
	if !st.IsDir() {
		s.walkFile(r, p, filepath.Base(p), st, nil)
		return
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		real = p
	}
	w := &treeWalk{s: s, r: r, ctx: ctx, root: real, refs: map[string]bool{}}
	w.dir(p, ".", ancestry{}.with(st), 0)
}

func (s *Scanner) walkFile(r *run, full, rel string, st fs.FileInfo, refs map[string]bool) {
	if !st.Mode().IsRegular() {
		r.report(FileResult{Path: full, Size: -1, Findings: []Finding{{Path: full, Detector: DetectMedia, Severity: Low,
			Reason: fmt.Sprintf("special file (%s) on import media was not read", st.Mode().Type())}}})
		return
	}
	r.add(item{path: full, name: filepath.Base(full), size: st.Size(), why: whyDICOM(rel, refs),
		open: func() (io.ReadCloser, error) { return openMedia(full) }})
}

type treeWalk struct {
	s    *Scanner
	r    *run
	ctx  context.Context
	root string          // the tree's real path, for links leaving it
	refs map[string]bool // DICOMDIR references, upper-case slash paths
}

func (w *treeWalk) dir(full, rel string, anc ancestry, depth int) {
	entries, err := os.ReadDir(full)
	if err != nil {
		w.r.report(FileResult{Path: full, Size: -1, Findings: []Finding{{Path: full, Detector: DetectUnreadable,
			Severity: Medium, Reason: fmt.Sprintf("directory cannot be listed (%s); what it holds was not scanned", errReason(err))}}})
	}
	w.readDICOMDIR(full, rel, entries)
	for _, e := range entries {
		if w.ctx.Err() != nil {
			return
		}
		w.entry(filepath.Join(full, e.Name()), path.Join(rel, e.Name()), anc, depth)
	}
}

// readDICOMDIR notes the files a DICOMDIR references before the walk
// reaches them.
func (w *treeWalk) readDICOMDIR(full, rel string, entries []fs.DirEntry) {
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.EqualFold(e.Name(), "DICOMDIR") {
			continue
		}
		f, err := openMedia(filepath.Join(full, e.Name()))
		if err != nil {
			continue
		}
		size := int64(-1)
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		w.s.addRefs(w.ctx, f, size, rel, w.refs)
		f.Close()
	}
}

func (w *treeWalk) entry(full, rel string, anc ancestry, depth int) {
	st, err := os.Lstat(full)
	if err != nil {
		w.r.report(FileResult{Path: full, Size: -1, Findings: []Finding{unreadable(full, err)}})
		return
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		w.link(full, rel, anc, depth)
		return
	}
	if st.IsDir() {
		w.subdir(full, rel, st, anc, depth)
		return
	}
	w.s.walkFile(w.r, full, rel, st, w.refs)
}

func (w *treeWalk) subdir(full, rel string, st fs.FileInfo, anc ancestry, depth int) {
	switch {
	case anc.has(st):
		w.r.report(FileResult{Path: full, Size: -1, Findings: []Finding{{Path: full, Detector: DetectSymlink, Severity: Medium,
			Reason: "directory loop: this directory contains itself; it was scanned once"}}})
	case depth+1 > maxTreeDepth:
		w.r.report(FileResult{Path: full, Size: -1, Findings: []Finding{{Path: full, Detector: DetectMedia, Severity: Medium,
			Reason: fmt.Sprintf("directories nested deeper than %d levels; the rest was not scanned", maxTreeDepth)}}})
	default:
		w.dir(full, rel, anc.with(st), depth+1)
	}
}

// link follows a symbolic link that stays inside the tree; links that
// loop, dangle or leave the media are findings.
func (w *treeWalk) link(full, rel string, anc ancestry, depth int) {
	st, err := os.Stat(full)
	if err != nil {
		w.r.report(FileResult{Path: full, Size: -1, Findings: []Finding{linkOrUnreadable(full, err)}})
		return
	}
	target, err := filepath.EvalSymlinks(full)
	inside, _ := filepath.Rel(w.root, target)
	if err != nil || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
		w.r.report(FileResult{Path: full, Size: -1, Findings: []Finding{{Path: full, Detector: DetectSymlink, Severity: Low,
			Reason: "symbolic link leads outside the scanned media; it was not followed"}}})
		return
	}
	if st.IsDir() {
		w.subdir(full, rel, st, anc, depth)
		return
	}
	w.s.walkFile(w.r, full, rel, st, w.refs)
}

func linkOrUnreadable(p string, err error) Finding {
	switch {
	case errors.Is(err, syscall.ELOOP):
		return Finding{Path: p, Detector: DetectSymlink, Severity: Medium, Reason: "symbolic link loop; nothing behind it was scanned"}
	case errors.Is(err, fs.ErrNotExist):
		return Finding{Path: p, Detector: DetectSymlink, Severity: Low, Reason: "file or link target does not exist"}
	}
	return unreadable(p, err)
}

// ancestry is the set of directories on the path from the root, by
// identity, so a bind mount or link back up is seen as a loop.
type ancestry map[fileKey]bool

func (a ancestry) with(st fs.FileInfo) ancestry {
	k, ok := keyOf(st)
	if !ok {
		return a
	}
	out := make(ancestry, len(a)+1)
	for x := range a {
		out[x] = true
	}
	out[k] = true
	return out
}

func (a ancestry) has(st fs.FileInfo) bool {
	k, ok := keyOf(st)
	return ok && a[k]
}
