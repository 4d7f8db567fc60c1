package guard

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DICOM Part 10 tags and lengths the validator needs.
const (
	tagMetaGroupLength   = 0x00020000
	tagTransferSyntax    = 0x00020010
	tagReferencedFileID  = 0x00041500
	tagPixelData         = 0x7FE00010
	tagItem              = 0xFFFEE000
	tagItemDelimitation  = 0xFFFEE00D
	tagSequenceDelimiter = 0xFFFEE0DD
	undefinedLength      = 0xFFFFFFFF
	preambleLen          = 128
	maxMetaGroupLength   = 1 << 16
	maxSmallValue        = 1 << 10
)

// Transfer syntaxes whose encoding differs from explicit VR little endian.
const (
	tsImplicitLittle = "1.2.840.10008.1.2"
	tsExplicitLittle = "1.2.840.10008.1.2.1"
	tsDeflated       = "1.2.840.10008.1.2.1.99"
	tsExplicitBig    = "1.2.840.10008.1.2.2"
)

// dicomLimits bounds the work one file may cause.
type dicomLimits struct {
	maxDepth    int   // nested sequence levels
	maxRefs     int   // DICOMDIR referenced files collected
	maxInflated int64 // bytes a deflated data set may inflate to
}

// dicomResult is what validating one Part 10 stream found.
type dicomResult struct {
	preamble       []byte // the 128 bytes, nil when the file is shorter
	hasPrefix      bool   // "DICM" at byte 128
	transferSyntax string
	problem        string // first structural problem; "" when well formed
	bomb           bool   // the problem is a deflated data set past its limit
	severe         bool   // the problem has an exploit's shape, not a bad burn's
	referenced     []string
}

// errStructure is a structural problem in the file, as opposed to an I/O
// error while reading it.
type errStructure struct {
	off    int64
	msg    string
	bomb   bool
	severe bool
}

func (e *errStructure) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

var errInflateLimit = errors.New("deflated data set inflates past its limit")

// validateDICOM checks the Part 10 structure of r without allocating for
// declared lengths: values are skipped, never read, except the few small
// ones it needs. size is the stream length, or -1 when unknown. A non-nil
// error is an I/O error; structural problems are in the result.
func validateDICOM(r io.Reader, size int64, lim dicomLimits) (dicomResult, error) {
	p := &dicomParser{r: bufio.NewReaderSize(r, 64<<10), order: binary.LittleEndian, explicit: true, lim: lim}
	res, err := p.run(size)
	var se *errStructure
	switch {
	case errors.As(err, &se):
		res.problem = se.Error()
		res.bomb, res.severe = se.bomb, se.severe
		return res, nil
	case err != nil:
		return res, err
	}
	return res, nil
}

type dicomParser struct {
	r        *bufio.Reader
	off      int64
	order    binary.ByteOrder
	explicit bool
	lim      dicomLimits
	res      dicomResult
	buf      [12]byte
}

func (p *dicomParser) fail(format string, args ...any) error {
	return &errStructure{off: p.off, msg: fmt.Sprintf(format, args...)}
}

func (p *dicomParser) run(size int64) (dicomResult, error) {
	head := make([]byte, preambleLen+4)
	n, err := io.ReadFull(p.r, head)
	p.off = int64(n)
	if err != nil {
		return p.res, p.readErr(err, "file ends before the 128-byte preamble and DICM prefix")
	}
	p.res.preamble = head[:preambleLen]
	if string(head[preambleLen:]) != "DICM" {
		return p.res, p.fail("no DICM prefix at byte 128: not a DICOM Part 10 file")
	}
	p.res.hasPrefix = true
	if err := p.readMeta(size); err != nil {
		return p.res, err
	}
	if err := p.useTransferSyntax(); err != nil {
		return p.res, err
	}
	if p.res.transferSyntax == tsDeflated {
		size = -1
	}
	return p.res, p.dataset(-1, size, 0)
}

// readErr turns end-of-file into a structural "truncated" problem and
// passes any other read error through.
func (p *dicomParser) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return p.fail("truncated: %s", what)
	}
	if errors.Is(err, errInflateLimit) {
		return &errStructure{off: p.off, msg: errInflateLimit.Error(), bomb: true}
	}
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) {
		return p.fail("deflated data set is corrupt")
	}
	return err
}

func (p *dicomParser) read(n int) ([]byte, error) {
	b := p.buf[:n]
	got, err := io.ReadFull(p.r, b)
	p.off += int64(got)
	return b, err
}

func (p *dicomParser) skip(n int64, what string) error {
	got, err := p.r.Discard(int(n))
	p.off += int64(got)
	if err != nil {
		return p.readErr(err, what)
	}
	return nil
}

func (p *dicomParser) readValue(n uint32, what string) (string, error) {
	if n > maxSmallValue {
		return "", p.fail("%s is %d bytes long; at most %d expected", what, n, maxSmallValue)
	}
	b := make([]byte, n)
	got, err := io.ReadFull(p.r, b)
	p.off += int64(got)
	if err != nil {
		return "", p.readErr(err, what)
	}
	return strings.TrimRight(string(b), "\x00 "), nil
}
