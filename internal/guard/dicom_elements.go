package guard

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// element is one data element header.
type element struct {
	tag    uint32
	vr     string // "" in implicit VR and for items and delimiters
	length uint32
}

func (e element) String() string { return fmt.Sprintf("(%04X,%04X)", e.tag>>16, e.tag&0xFFFF) }

func (e element) undefined() bool { return e.length == undefinedLength }

// longVRs have a 4-byte length after two reserved bytes in explicit VR.
var longVRs = map[string]bool{
	"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true, "SQ": true,
	"SV": true, "UC": true, "UN": true, "UR": true, "UT": true, "UV": true,
}

var shortVRs = map[string]bool{
	"AE": true, "AS": true, "AT": true, "CS": true, "DA": true, "DS": true, "DT": true,
	"FL": true, "FD": true, "IS": true, "LO": true, "LT": true, "PN": true, "SH": true,
	"SL": true, "SS": true, "ST": true, "TM": true, "UI": true, "UL": true, "US": true,
}

// header reads the next element header; io.EOF means the stream ended
// cleanly before it.
func (p *dicomParser) header() (element, error) {
	b, err := p.read(4)
	if err != nil {
		if len(b) > 0 && err == io.ErrUnexpectedEOF {
			return element{}, p.fail("truncated: file ends inside an element tag")
		}
		return element{}, err
	}
	e := element{tag: uint32(p.order.Uint16(b))<<16 | uint32(p.order.Uint16(b[2:]))}
	switch {
	case e.tag>>16 == 0xFFFE:
		e.length, err = p.uint32("item length")
	case p.explicit:
		err = p.explicitVR(&e)
	default:
		e.length, err = p.uint32("element length")
	}
	return e, err
}

func (p *dicomParser) explicitVR(e *element) error {
	b, err := p.read(2)
	if err != nil {
		return p.readErr(err, "file ends inside a VR")
	}
	e.vr = string(b)
	switch {
	case longVRs[e.vr]:
		if _, err := p.read(2); err != nil {
			return p.readErr(err, "file ends inside an element header")
		}
		e.length, err = p.uint32("element length")
		return err
	case shortVRs[e.vr]:
		b, err := p.read(2)
		if err != nil {
			return p.readErr(err, "file ends inside an element length")
		}
		e.length = uint32(p.order.Uint16(b))
		return nil
	}
	return p.fail("element %s has unknown VR %q", e, strings.ToValidUTF8(e.vr, "?"))
}

func (p *dicomParser) uint32(what string) (uint32, error) {
	b, err := p.read(4)
	if err != nil {
		return 0, p.readErr(err, "file ends inside an "+what)
	}
	return p.order.Uint32(b), nil
}

// readMeta reads the File Meta group: explicit VR little endian, led by
// its group length, which must cover exactly the group's elements.
func (p *dicomParser) readMeta(size int64) error {
	e, err := p.header()
	if err != nil {
		return p.readErr(err, "file ends before the File Meta group")
	}
	if e.tag != tagMetaGroupLength || e.vr != "UL" || e.length != 4 {
		return p.fail("File Meta must start with its group length (0002,0000) UL, found %s %s", e, e.vr)
	}
	n, err := p.uint32("File Meta group length")
	if err != nil {
		return err
	}
	end := p.off + int64(n)
	if n > maxMetaGroupLength || (size >= 0 && end > size) {
		return p.fail("File Meta group length %d runs past the file or the %d-byte limit", n, maxMetaGroupLength)
	}
	for p.off < end {
		if err := p.metaElement(end); err != nil {
			return err
		}
	}
	if p.off != end {
		return p.fail("File Meta elements overrun the group length by %d bytes", p.off-end)
	}
	if p.res.transferSyntax == "" {
		return p.fail("File Meta lacks the Transfer Syntax UID (0002,0010)")
	}
	return nil
}

func (p *dicomParser) metaElement(end int64) error {
	e, err := p.header()
	if err != nil {
		return p.readErr(err, "file ends inside the File Meta group")
	}
	if e.tag>>16 != 0x0002 {
		return p.fail("element %s inside the File Meta group length", e)
	}
	if e.undefined() || p.off+int64(e.length) > end {
		return p.fail("File Meta element %s length %d runs past the group length", e, e.length)
	}
	if e.tag == tagTransferSyntax {
		p.res.transferSyntax, err = p.readValue(e.length, "Transfer Syntax UID")
		return err
	}
	return p.skip(int64(e.length), "file ends inside a File Meta element")
}

// useTransferSyntax switches the data set encoding the meta group names.
func (p *dicomParser) useTransferSyntax() error {
	ts := p.res.transferSyntax
	if !validUID(ts) {
		return p.fail("Transfer Syntax UID %q is not a valid UID", strings.ToValidUTF8(ts, "?"))
	}
	switch ts {
	case tsImplicitLittle:
		p.explicit = false
	case tsExplicitBig:
		p.order = binary.BigEndian
	case tsDeflated:
		p.inflate()
	}
	return nil
}

// inflate puts a bounded inflater under the parser: a deflated data set
// is a decompression bomb candidate like any archive.
func (p *dicomParser) inflate() {
	lim := p.lim.maxInflated
	if lim <= 0 {
		lim = 1 << 30
	}
	inflated := &capReader{r: flate.NewReader(p.r), left: lim, err: errInflateLimit}
	p.r = bufio.NewReaderSize(inflated, 64<<10)
	p.off = 0
}

// validUID reports whether s is a DICOM UID: at most 64 characters of
// digits and dots, no empty or zero-led components.
func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range strings.Split(s, ".") {
		if c == "" || (len(c) > 1 && c[0] == '0') || strings.Trim(c, "0123456789") != "" {
			return false
		}
	}
	return true
}
