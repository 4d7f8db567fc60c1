package guard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// item is one file to scan, wherever it lives: on disk, in an image, in
// an archive, or in an upload.
type item struct {
	path  string // as reported
	name  string // base name, for its extension
	size  int64  // -1 when unknown
	open  func() (io.ReadCloser, error)
	ra    io.ReaderAt // random access to the content, when there is one
	depth int         // archive nesting level; 0 for a file on the media itself
	// why, when not empty, says why the file must be DICOM: named .dcm,
	// under a DICOM directory, referenced by DICOMDIR.
	why string
	// once is set when open cannot give the content a second time.
	once bool
}

// archiveBudget is shared by every archive under one top-level file, so
// nesting cannot multiply the limits.
type archiveBudget struct {
	entries int
	bytes   int64
}

// errBudget means the archives under one top-level file inflated past
// Limits.MaxArchiveBytes.
var errBudget = errors.New("archive content exceeds the size budget")

// pass is what one streaming read of a file learned.
type pass struct {
	head    []byte
	kind    Kind
	sum     [32]byte
	n       int64
	dicom   *dicomResult
	macro   bool
	clam    ClamVerdict
	clamErr error
	spool   *spoolBuffer
	readErr error
}

// scanItem reads a file once and runs every detector on it; archives and
// images add the results of their entries.
func (s *Scanner) scanItem(ctx context.Context, it item, b *archiveBudget) []FileResult {
	if b == nil {
		b = &archiveBudget{}
	}
	res := FileResult{Path: it.path, Size: it.size}
	rc, err := it.open()
	if err != nil {
		res.Findings = []Finding{unreadable(it.path, err)}
		return []FileResult{res}
	}
	defer rc.Close()
	if ra, ok := rc.(io.ReaderAt); ok && it.ra == nil && it.size >= 0 {
		it.ra = ra
	}
	p := s.read(ctx, it, rc)
	res.Kind, res.Size = p.kind, p.n
	res.Findings = s.judge(it, p)
	res.DICOM = p.dicom != nil && p.dicom.problem == "" && p.readErr == nil
	var nested []FileResult
	if p.readErr == nil {
		res.SHA256 = hex.EncodeToString(p.sum[:])
		var more []Finding
		more, nested = s.scanContainer(ctx, it, p, b)
		res.Findings = append(res.Findings, more...)
	}
	for i := range res.Findings {
		res.Findings[i].SHA256 = res.SHA256
	}
	if p.readErr == nil {
		s.inspect(ctx, it, res)
	}
	return append([]FileResult{res}, nested...)
}

// inspect hands a fully read file to Config.Inspect.
func (s *Scanner) inspect(ctx context.Context, it item, res FileResult) {
	if s.cfg.Inspect == nil || ctx.Err() != nil {
		return
	}
	open := it.open
	if it.once {
		open = nil
	}
	s.cfg.Inspect(ctx, res, open)
}

// read streams the content once through the hash, clamd, the macro
// marker search and the DICOM validator.
func (s *Scanner) read(ctx context.Context, it item, rc io.Reader) pass {
	var p pass
	br := bufio.NewReaderSize(&ctxReader{ctx: ctx, r: rc}, 64<<10)
	head, err := br.Peek(sniffLen)
	p.head, p.kind = bytes.Clone(head), sniff(head)
	if err != nil && !errors.Is(err, io.EOF) {
		p.readErr, p.n = err, int64(len(head))
		return p
	}
	sinks := s.sinks(ctx, it, &p)
	tee := io.TeeReader(br, sinks.w)
	if it.why != "" || p.kind == KindDICOM {
		res, err := validateDICOM(tee, it.size, s.dicomLimits(it.size))
		p.dicom, p.readErr = &res, err
	}
	if p.readErr == nil {
		_, p.readErr = io.Copy(io.Discard, tee)
	}
	sinks.finish(&p)
	return p
}

// sinks are the writers every byte of a file passes through.
type sinks struct {
	w     io.Writer
	hash  hash.Hash
	count *countWriter
	clam  *ClamStream
	mark  *markerWriter
}

func (s *Scanner) sinks(ctx context.Context, it item, p *pass) sinks {
	k := sinks{hash: sha256.New(), count: &countWriter{}}
	ws := []io.Writer{k.hash, k.count}
	if s.cfg.Clamd != nil {
		if k.clam, p.clamErr = s.cfg.Clamd.Stream(ctx); k.clam != nil {
			ws = append(ws, k.clam)
		}
	}
	if p.kind == KindOLE2 {
		k.mark = newMarkerWriter(vbaMarkers...)
		ws = append(ws, k.mark)
	}
	if (p.kind == KindZip || p.kind == KindISO) && it.ra == nil {
		p.spool = &spoolBuffer{max: s.lim.MaxSpoolBytes}
		ws = append(ws, p.spool)
	}
	k.w = io.MultiWriter(ws...)
	return k
}

func (k sinks) finish(p *pass) {
	p.n = k.count.n
	copy(p.sum[:], k.hash.Sum(nil))
	p.macro = k.mark != nil && k.mark.found
	if k.clam != nil {
		p.clam, p.clamErr = k.clam.Close()
	}
}

func (s *Scanner) dicomLimits(size int64) dicomLimits {
	inflated := s.lim.MaxArchiveBytes
	if size >= 0 {
		inflated = min(inflated, s.lim.MaxCompressionRatio*max(size, s.lim.RatioMinBytes))
	}
	return dicomLimits{maxDepth: s.lim.MaxDICOMDepth, maxRefs: s.lim.MaxDICOMDIRRefs, maxInflated: inflated}
}

// scanContainer opens zip archives and ISO images found by their content.
func (s *Scanner) scanContainer(ctx context.Context, it item, p pass, b *archiveBudget) ([]Finding, []FileResult) {
	if p.kind != KindZip && p.kind != KindISO {
		return nil, nil
	}
	if it.depth >= s.lim.MaxArchiveDepth {
		return []Finding{bombFinding(it.path, fmt.Sprintf("archives nested deeper than %d levels", s.lim.MaxArchiveDepth))}, nil
	}
	ra, size := it.ra, p.n
	if ra == nil {
		if p.spool.over {
			return []Finding{{Path: it.path, Detector: DetectArchive, Severity: High,
				Reason: fmt.Sprintf("archive of %d bytes is over the %d-byte limit for archives that arrive as a stream; its content was not inspected", p.n, s.lim.MaxSpoolBytes)}}, nil
		}
		ra = bytes.NewReader(p.spool.buf.Bytes())
	}
	if p.kind == KindZip {
		return s.scanZip(ctx, it, ra, size, b)
	}
	return s.scanISO(ctx, it, ra, size, b)
}

// ctxReader stops a long read when the scan is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}

// spoolBuffer keeps up to max bytes and notes when there were more.
type spoolBuffer struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (s *spoolBuffer) Write(b []byte) (int, error) {
	if s.over || int64(s.buf.Len()+len(b)) > s.max {
		s.over = true
		s.buf = bytes.Buffer{}
		return len(b), nil
	}
	return s.buf.Write(b)
}
