package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/medsec/medsec/internal/guard/iso9660"
)

// scanISO walks an ISO 9660 image and scans each file in it. Extents are
// read in place; their total counts against the budget, so an image whose
// entries all point at one huge extent cannot multiply the work.
func (s *Scanner) scanISO(ctx context.Context, it item, ra io.ReaderAt, size int64, b *archiveBudget) ([]Finding, []FileResult) {
	lim := iso9660.DefaultLimits
	lim.MaxEntries = max(0, s.lim.MaxArchiveEntries-b.entries)
	im, err := iso9660.Open(ra, size, lim)
	if err != nil {
		return []Finding{{Path: it.path, Detector: DetectArchive, Severity: Medium,
			Reason: fmt.Sprintf("ISO 9660 image cannot be read (%s); its content was not inspected", err)}}, nil
	}
	files, bad, err := isoFiles(it.path, im)
	b.entries += len(files)
	if errors.Is(err, iso9660.ErrLimit) {
		return []Finding{bombFinding(it.path, err.Error())}, bad
	}
	refs := s.isoDICOMDIRRefs(ctx, im, files)
	results := bad
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		if b.bytes += f.Size; b.bytes > s.lim.MaxArchiveBytes {
			return []Finding{bombFinding(it.path, fmt.Sprintf("image files add up to more than the %d-byte budget", s.lim.MaxArchiveBytes))}, results
		}
		results = append(results, s.scanItem(ctx, isoEntry(it, im, f, refs), b)...)
	}
	return nil, results
}

// isoFiles lists the image's files; entries that cannot be read become
// results with a finding of their own.
func isoFiles(parent string, im *iso9660.Image) ([]iso9660.File, []FileResult, error) {
	var files []iso9660.File
	var bad []FileResult
	err := im.Walk(func(f iso9660.File, err error) error {
		switch {
		case err != nil:
			p := parent + "!/" + f.Path
			bad = append(bad, FileResult{Path: p, Size: -1, Findings: []Finding{{Path: p, Detector: DetectArchive,
				Severity: Medium, Reason: fmt.Sprintf("image entry cannot be read (%s); it was not inspected", err)}}})
		case !f.Dir:
			files = append(files, f)
		}
		return nil
	})
	return files, bad, err
}

func isoEntry(parent item, im *iso9660.Image, f iso9660.File, refs map[string]bool) item {
	sr := im.Open(f)
	return item{
		path:  parent.path + "!/" + f.Path,
		name:  path.Base(f.Path),
		size:  f.Size,
		ra:    sr,
		depth: parent.depth + 1,
		why:   whyDICOM(f.Path, refs),
		open:  func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(sr, 0, f.Size)), nil },
	}
}

func (s *Scanner) isoDICOMDIRRefs(ctx context.Context, im *iso9660.Image, files []iso9660.File) map[string]bool {
	refs := map[string]bool{}
	for _, f := range files {
		if strings.EqualFold(path.Base(f.Path), "DICOMDIR") {
			s.addRefs(ctx, im.Open(f), f.Size, path.Dir(f.Path), refs)
		}
	}
	return refs
}
