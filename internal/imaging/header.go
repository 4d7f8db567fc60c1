package imaging

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Transfer syntaxes and the SOP class the intake treats specially.
const (
	implicitLittleEndian   = "1.2.840.10008.1.2"
	explicitBigEndian      = "1.2.840.10008.1.2.2"
	deflatedTransferSyntax = "1.2.840.10008.1.2.1.99"
	mediaDirectoryStorage  = "1.2.840.10008.1.3.10" // a DICOMDIR
)

// errHeader is a DICOM file whose identifying attributes cannot be read.
var errHeader = errors.New("DICOM attributes cannot be read")

// header holds the attributes the intake indexes and matches on.
type header struct {
	patientID                       string
	study, series, instance, class  string
	modality, studyDate, studyTime  string
	description, mediaClass, syntax string
}

// Tags, as group<<16 | element.
const (
	tagMediaClass     = 0x00020002
	tagTransferSyntax = 0x00020010
	tagItem           = 0xFFFEE000
	tagItemEnd        = 0xFFFEE00D
	tagSequenceEnd    = 0xFFFEE0DD
	undefinedLength   = 0xFFFFFFFF
)

// wanted maps the data-set attributes read to where they go. They all sit
// before group 0x0028, so the reader stops there: pixel data is never
// reached.
var wanted = map[uint32]func(h *header) *string{
	0x00080016: func(h *header) *string { return &h.class },
	0x00080018: func(h *header) *string { return &h.instance },
	0x00080020: func(h *header) *string { return &h.studyDate },
	0x00080030: func(h *header) *string { return &h.studyTime },
	0x00080060: func(h *header) *string { return &h.modality },
	0x00081030: func(h *header) *string { return &h.description },
	0x00100020: func(h *header) *string { return &h.patientID },
	0x0020000D: func(h *header) *string { return &h.study },
	0x0020000E: func(h *header) *string { return &h.series },
}

// Bounds on what the reader accepts.
const (
	maxValue    = 1024 // a wanted attribute's value
	maxNesting  = 32   // sequences within sequences
	preambleLen = 128
)

// longVR lists the explicit VRs with a 4-byte length.
var longVR = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true,
	"SQ": true, "SV": true, "UC": true, "UN": true, "UR": true, "UT": true, "UV": true}

// readHeader reads the attributes the intake needs from a Part 10 file:
// the file meta group, then top-level elements up to group 0x0020,
// skipping sequences. It is written for hostile input: every length is
// checked against what is left, nesting is bounded, nothing is allocated
// for a declared length. (The DICOM library spent seconds, then failed,
// on implicit-VR files the guard accepts; this needs only nine strings.)
func readHeader(data []byte) (header, error) {
	var h header
	if len(data) < preambleLen+4 || string(data[preambleLen:preambleLen+4]) != "DICM" {
		return h, fmt.Errorf("%w: no DICM prefix", errHeader)
	}
	r := &elementReader{b: data, off: preambleLen + 4, order: binary.LittleEndian, explicit: true}
	if err := r.meta(&h); err != nil {
		return h, fmt.Errorf("%w: file meta information: %v", errHeader, err)
	}
	switch h.syntax {
	case deflatedTransferSyntax:
		return h, fmt.Errorf("%w: deflated transfer syntax is not indexed; inflate the file first", errHeader)
	case implicitLittleEndian:
		r.explicit = false
	case explicitBigEndian:
		r.order = binary.BigEndian
	}
	if err := r.dataset(&h); err != nil {
		return h, fmt.Errorf("%w: %v", errHeader, err)
	}
	return h, nil
}

// elementReader walks data elements in one encoding.
type elementReader struct {
	b        []byte
	off      int
	order    binary.ByteOrder
	explicit bool
}

type element struct {
	tag    uint32
	vr     string
	length uint32
}

// meta reads group 0x0002, always explicit VR little endian.
func (r *elementReader) meta(h *header) error {
	for r.off+4 <= len(r.b) && binary.LittleEndian.Uint16(r.b[r.off:]) == 0x0002 {
		e, err := r.header()
		if err != nil {
			return err
		}
		if err := r.value(e, 0, func(v string) {
			switch e.tag {
			case tagTransferSyntax:
				h.syntax = v
			case tagMediaClass:
				h.mediaClass = v
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

// dataset reads top-level elements until group 0x0020 is passed.
func (r *elementReader) dataset(h *header) error {
	for r.off < len(r.b) {
		e, err := r.header()
		if err != nil {
			return err
		}
		if e.tag>>16 > 0x0020 {
			return nil
		}
		dst, ok := wanted[e.tag]
		if err := r.value(e, 0, func(v string) {
			if ok {
				*dst(h) = v
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

// header reads a tag, VR and length at the current offset.
func (r *elementReader) header() (element, error) {
	if r.off+8 > len(r.b) {
		return element{}, fmt.Errorf("element header cut off at byte %d", r.off)
	}
	var e element
	e.tag = uint32(r.order.Uint16(r.b[r.off:]))<<16 | uint32(r.order.Uint16(r.b[r.off+2:]))
	if e.tag>>16 == 0xFFFE || !r.explicit {
		e.length = r.order.Uint32(r.b[r.off+4:])
		r.off += 8
		return e, nil
	}
	e.vr = string(r.b[r.off+4 : r.off+6])
	if !longVR[e.vr] {
		e.length = uint32(r.order.Uint16(r.b[r.off+6:]))
		r.off += 8
		return e, nil
	}
	if r.off+12 > len(r.b) {
		return element{}, fmt.Errorf("element header cut off at byte %d", r.off)
	}
	e.length = r.order.Uint32(r.b[r.off+8:])
	r.off += 12
	return e, nil
}

// value consumes an element's value. A wanted string goes to take; an
// undefined length is walked as a sequence.
func (r *elementReader) value(e element, depth int, take func(string)) error {
	if e.length == undefinedLength {
		return r.undefinedValue(e, depth)
	}
	if int64(e.length) > int64(len(r.b)-r.off) {
		return fmt.Errorf("element (%04X,%04X) declares %d bytes, %d are left", e.tag>>16, e.tag&0xFFFF, e.length, len(r.b)-r.off)
	}
	if e.length <= maxValue && e.vr != "SQ" {
		take(strings.TrimRight(strings.TrimSpace(string(r.b[r.off:r.off+int(e.length)])), "\x00 "))
	}
	r.off += int(e.length)
	return nil
}

// undefinedValue walks a value of undefined length. Inside UN it is
// implicit VR little endian, whatever the file's encoding (PS3.5 6.2.2).
func (r *elementReader) undefinedValue(e element, depth int) error {
	if e.vr != "UN" {
		return r.undefined(depth)
	}
	order, explicit := r.order, r.explicit
	r.order, r.explicit = binary.LittleEndian, false
	err := r.undefined(depth)
	r.order, r.explicit = order, explicit
	return err
}

// undefined walks a sequence (or encapsulated value) of undefined length
// to its delimiter: items of defined length are skipped, items of
// undefined length are walked element by element.
func (r *elementReader) undefined(depth int) error {
	if depth >= maxNesting {
		return fmt.Errorf("sequences nested deeper than %d", maxNesting)
	}
	for {
		it, err := r.header()
		if err != nil {
			return err
		}
		switch {
		case it.tag == tagSequenceEnd:
			return nil
		case it.tag != tagItem:
			return fmt.Errorf("(%04X,%04X) inside a sequence where an item belongs", it.tag>>16, it.tag&0xFFFF)
		case it.length != undefinedLength:
			if err := r.value(it, depth+1, func(string) {}); err != nil {
				return err
			}
		default:
			if err := r.item(depth + 1); err != nil {
				return err
			}
		}
	}
}

// item walks the elements of an item of undefined length to its end.
func (r *elementReader) item(depth int) error {
	for {
		e, err := r.header()
		if err != nil {
			return err
		}
		if e.tag == tagItemEnd {
			return nil
		}
		if err := r.value(e, depth, func(string) {}); err != nil {
			return err
		}
	}
}

// directory reports whether the file is a DICOMDIR (a media index, not an
// image).
func (h header) directory() bool {
	return h.mediaClass == mediaDirectoryStorage || h.class == mediaDirectoryStorage
}

// missing names the attributes an image needs and lacks.
func (h header) missing() []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"Patient ID", h.patientID}, {"Study Instance UID", h.study},
		{"Series Instance UID", h.series}, {"SOP Instance UID", h.instance}} {
		if f.v == "" {
			out = append(out, f.name)
		}
	}
	return out
}

// effective is the study's date and time, or zero when the file gives no
// usable date.
func (h header) effective() time.Time {
	if len(h.studyDate) != 8 {
		return time.Time{}
	}
	t := h.studyTime
	if i := strings.IndexByte(t, '.'); i >= 0 {
		t = t[:i]
	}
	for _, layout := range []string{"20060102150405", "200601021504", "2006010215", "20060102"} {
		if v, err := time.Parse(layout, h.studyDate+t); err == nil {
			return v
		}
	}
	if v, err := time.Parse("20060102", h.studyDate); err == nil {
		return v
	}
	return time.Time{}
}

// zeroPreamble clears the 128-byte preamble of a Part 10 file, where a
// polyglot keeps an executable header (CVE-2019-11687), so what PACS
// stores is never runnable.
func zeroPreamble(b []byte) {
	if len(b) >= preambleLen+4 && string(b[preambleLen:preambleLen+4]) == "DICM" {
		clear(b[:preambleLen])
	}
}
