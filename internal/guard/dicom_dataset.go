package guard

import (
	"errors"
	"io"
	"path"
	"strings"
)

// dataset walks elements until end (an absolute offset), or, when end is
// -1, until an item delimiter (depth > 0) or the end of the stream (depth
// 0). bound is the last offset any value may reach, -1 when unknown.
func (p *dicomParser) dataset(end, bound int64, depth int) error {
	for end < 0 || p.off < end {
		e, err := p.header()
		if errors.Is(err, io.EOF) && end < 0 && depth == 0 {
			return nil
		}
		if err != nil {
			return p.readErr(err, "file ends inside a data set")
		}
		if e.tag == tagItemDelimitation && end < 0 && depth > 0 {
			return nil
		}
		if err := p.element(e, bound, depth); err != nil {
			return err
		}
	}
	if p.off != end {
		return p.fail("elements overrun their item by %d bytes", p.off-end)
	}
	return nil
}

func (p *dicomParser) element(e element, bound int64, depth int) error {
	switch {
	case e.tag>>16 == 0xFFFE:
		return p.fail("unexpected item or delimiter %s inside a data set", e)
	case depth == 0 && e.tag>>16 == 0x0002:
		return p.fail("File Meta element %s outside the File Meta group length", e)
	case !e.undefined() && bound >= 0 && p.off+int64(e.length) > bound:
		return p.fail("element %s declares %d bytes but only %d remain", e, e.length, bound-p.off)
	case e.vr == "SQ" || (e.undefined() && (e.vr == "UN" || e.vr == "")):
		return p.sequence(e, bound, depth+1)
	case e.undefined() && e.tag == tagPixelData:
		return p.fragments(bound)
	case e.undefined():
		return p.fail("element %s has undefined length but is no sequence", e)
	case e.tag == tagReferencedFileID:
		return p.referencedFile(e)
	}
	return p.skip(int64(e.length), "element "+e.String()+" runs past the end of the file")
}

// sequence walks the items of a sequence. An undefined-length UN holds
// implicit VR little endian content (PS3.5 6.2.2).
func (p *dicomParser) sequence(e element, bound int64, depth int) error {
	if depth > p.lim.maxDepth {
		err := p.fail("sequences nested deeper than %d levels at %s", p.lim.maxDepth, e)
		err.(*errStructure).severe = true
		return err
	}
	if e.vr == "UN" {
		defer func(explicit bool) { p.explicit = explicit }(p.explicit)
		p.explicit = false
	}
	end := int64(-1)
	if !e.undefined() {
		end = p.off + int64(e.length)
		bound = end
	}
	for end < 0 || p.off < end {
		done, err := p.item(bound, depth)
		if done || err != nil {
			return err
		}
	}
	if p.off != end {
		return p.fail("items overrun sequence %s by %d bytes", e, p.off-end)
	}
	return nil
}

// item reads one sequence item; done is true at a sequence delimiter.
func (p *dicomParser) item(bound int64, depth int) (done bool, err error) {
	e, err := p.header()
	if err != nil {
		return false, p.readErr(err, "file ends inside a sequence")
	}
	switch {
	case e.tag == tagSequenceDelimiter:
		return true, nil
	case e.tag != tagItem:
		return false, p.fail("sequence holds %s where an item belongs", e)
	case e.undefined():
		return false, p.dataset(-1, bound, depth)
	case bound >= 0 && p.off+int64(e.length) > bound:
		return false, p.fail("item declares %d bytes but only %d remain", e.length, bound-p.off)
	}
	end := p.off + int64(e.length)
	return false, p.dataset(end, end, depth)
}

// fragments skips encapsulated pixel data: items of defined length up to
// the sequence delimiter.
func (p *dicomParser) fragments(bound int64) error {
	for {
		e, err := p.header()
		if err != nil {
			return p.readErr(err, "file ends inside encapsulated pixel data")
		}
		switch {
		case e.tag == tagSequenceDelimiter:
			return nil
		case e.tag != tagItem || e.undefined():
			return p.fail("encapsulated pixel data holds %s where a fragment belongs", e)
		case bound >= 0 && p.off+int64(e.length) > bound:
			return p.fail("pixel data fragment declares %d bytes but only %d remain", e.length, bound-p.off)
		}
		if err := p.skip(int64(e.length), "pixel data fragment runs past the end of the file"); err != nil {
			return err
		}
	}
}

// referencedFile keeps a DICOMDIR Referenced File ID as a slash path, so
// the scanner knows which files on the media must be DICOM.
func (p *dicomParser) referencedFile(e element) error {
	v, err := p.readValue(e.length, "Referenced File ID")
	if err != nil || len(p.res.referenced) >= p.lim.maxRefs {
		return err
	}
	parts := strings.Split(v, "\\")
	for i, c := range parts {
		parts[i] = strings.TrimSpace(c)
	}
	ref := path.Clean(strings.Join(parts, "/"))
	if ref != "." && !strings.HasPrefix(ref, "../") && !path.IsAbs(ref) {
		p.res.referenced = append(p.res.referenced, ref)
	}
	return nil
}

// capReader fails with err once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *capReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, c.err
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}
