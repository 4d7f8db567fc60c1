package guard

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// scanZip checks a zip archive for bombs before inflating anything, then
// scans each entry as a file of its own, sharing the budget b.
func (s *Scanner) scanZip(ctx context.Context, it item, ra io.ReaderAt, size int64, b *archiveBudget) ([]Finding, []FileResult) {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return []Finding{{Path: it.path, Detector: DetectArchive, Severity: Medium,
			Reason: fmt.Sprintf("zip archive cannot be read (%s); its content was not inspected", err)}}, nil
	}
	if f := s.zipBomb(it.path, zr.File, size, b); f != nil {
		return []Finding{*f}, nil
	}
	findings := zipFindings(it.path, zr.File)
	refs := s.zipDICOMDIRRefs(ctx, zr.File, b)
	var results []FileResult
	for _, f := range zr.File {
		if ctx.Err() != nil {
			break
		}
		if !f.FileInfo().IsDir() {
			results = append(results, s.scanItem(ctx, s.zipEntry(it, f, refs, b), b)...)
		}
	}
	return findings, results
}

// zipBomb looks at what the central directory declares: entry count,
// total and per-entry sizes, compression ratios, and overlapping entries
// (one compressed stream shared by many entries).
func (s *Scanner) zipBomb(p string, files []*zip.File, size int64, b *archiveBudget) *Finding {
	b.entries += len(files)
	if b.entries > s.lim.MaxArchiveEntries {
		f := bombFinding(p, fmt.Sprintf("archives hold more than %d entries", s.lim.MaxArchiveEntries))
		return &f
	}
	var declared uint64
	for _, f := range files {
		declared += f.UncompressedSize64
		if why := s.ratioProblem(f); why != "" {
			bf := bombFinding(p, why)
			return &bf
		}
	}
	if declared > uint64(s.lim.MaxArchiveBytes-b.bytes) {
		f := bombFinding(p, fmt.Sprintf("entries declare %d bytes uncompressed, over the %d-byte budget", declared, s.lim.MaxArchiveBytes))
		return &f
	}
	return overlapping(p, files, size)
}

func (s *Scanner) ratioProblem(f *zip.File) string {
	u, c := f.UncompressedSize64, f.CompressedSize64
	if u < uint64(s.lim.RatioMinBytes) || (c > 0 && u/c < uint64(s.lim.MaxCompressionRatio)) {
		return ""
	}
	return fmt.Sprintf("entry %q expands %d bytes to %d (ratio over %d:1)", f.Name, c, u, s.lim.MaxCompressionRatio)
}

type span struct {
	start, end int64
	name       string
}

// overlapping reports entries whose compressed data share bytes, the
// trick of non-recursive zip bombs, and entries that run past the file.
func overlapping(p string, files []*zip.File, size int64) *Finding {
	spans := make([]span, 0, len(files))
	for _, f := range files {
		off, err := f.DataOffset()
		if err != nil {
			bf := Finding{Path: p, Detector: DetectArchive, Severity: Medium,
				Reason: fmt.Sprintf("entry %q has a bad local header (%s); the archive was not unpacked", f.Name, err)}
			return &bf
		}
		spans = append(spans, span{off, off + int64(f.CompressedSize64), f.Name})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i, sp := range spans {
		if sp.end > size || sp.end < sp.start {
			bf := Finding{Path: p, Detector: DetectArchive, Severity: Medium,
				Reason: fmt.Sprintf("entry %q runs past the end of the archive; the archive was not unpacked", sp.name)}
			return &bf
		}
		if i > 0 && sp.start < spans[i-1].end {
			bf := bombFinding(p, fmt.Sprintf("entries %q and %q overlap in the archive", spans[i-1].name, sp.name))
			return &bf
		}
	}
	return nil
}

// zipFindings flags what the entry list alone gives away: VBA projects of
// macro-enabled Office documents, encrypted entries, escaping names.
func zipFindings(p string, files []*zip.File) []Finding {
	var out []Finding
	seen := map[Detector]bool{}
	add := func(d Detector, sev Severity, reason string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, Finding{Path: p, Detector: d, Severity: sev, Reason: reason})
		}
	}
	for _, f := range files {
		lower := strings.ToLower(f.Name)
		switch {
		case strings.HasSuffix(lower, "vbaproject.bin"), strings.Contains(lower, "/macrosheets/"):
			add(DetectOfficeMacro, High, "macro-enabled Office document ("+f.Name+"); macros run code when the document is opened")
		case f.Flags&0x1 != 0:
			add(DetectArchive, High, fmt.Sprintf("entry %q is encrypted and cannot be inspected", f.Name))
		case strings.HasPrefix(f.Name, "/") || strings.HasPrefix(path.Clean("/"+f.Name), "/..") || hasDotDot(f.Name):
			add(DetectArchive, Medium, fmt.Sprintf("entry %q would be written outside the folder it is unpacked into", f.Name))
		}
	}
	return out
}

func hasDotDot(name string) bool {
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return true
		}
	}
	return false
}

// zipEntry makes the item for one entry; its reads count against b.
func (s *Scanner) zipEntry(parent item, f *zip.File, refs map[string]bool, b *archiveBudget) item {
	return item{
		path:  parent.path + "!/" + f.Name,
		name:  path.Base(f.Name),
		size:  int64(f.UncompressedSize64),
		depth: parent.depth + 1,
		why:   whyDICOM(f.Name, refs),
		open: func() (io.ReadCloser, error) {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			return &budgetReader{ReadCloser: rc, b: b, max: s.lim.MaxArchiveBytes}, nil
		},
	}
}

// zipDICOMDIRRefs reads every DICOMDIR in the archive for the files it
// references, so those are validated as DICOM whatever their names.
func (s *Scanner) zipDICOMDIRRefs(ctx context.Context, files []*zip.File, b *archiveBudget) map[string]bool {
	refs := map[string]bool{}
	for _, f := range files {
		if !strings.EqualFold(path.Base(f.Name), "DICOMDIR") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			continue
		}
		r := &budgetReader{ReadCloser: rc, b: b, max: s.lim.MaxArchiveBytes}
		s.addRefs(ctx, r, int64(f.UncompressedSize64), path.Dir(f.Name), refs)
		rc.Close()
	}
	return refs
}

// addRefs parses one DICOMDIR and adds the upper-case slash paths of the
// files it references, relative to the media root, to refs.
func (s *Scanner) addRefs(ctx context.Context, r io.Reader, size int64, dir string, refs map[string]bool) {
	res, err := validateDICOM(&ctxReader{ctx: ctx, r: r}, size, s.dicomLimits(size))
	if err != nil {
		return
	}
	for _, ref := range res.referenced {
		refs[strings.ToUpper(path.Join(dir, ref))] = true
	}
}

// budgetReader counts inflated bytes against the archive budget.
type budgetReader struct {
	io.ReadCloser
	b   *archiveBudget
	max int64
}

func (r *budgetReader) Read(p []byte) (int, error) {
	if r.b.bytes >= r.max {
		var one [1]byte
		if n, err := r.ReadCloser.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, errBudget
	}
	p = p[:min(int64(len(p)), r.max-r.b.bytes)]
	n, err := r.ReadCloser.Read(p)
	r.b.bytes += int64(n)
	return n, err
}
