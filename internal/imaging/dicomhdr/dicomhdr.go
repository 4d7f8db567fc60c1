// Package dicomhdr reads the few attributes PACS intake (location 5 of the
// paper) indexes and matches on — Patient ID, study, series and instance
// UIDs, SOP class, modality, study date, description — from a DICOM Part
// 10 file that may be hostile: every declared length is checked against
// what is left, sequence nesting is bounded, nothing is allocated for a
// declared length, and reading stops before group 0x0028, so pixel data is
// never reached. (The DICOM library spent seconds, then failed, on
// implicit-VR files the guard accepts; the intake needs only nine
// strings.)
package dicomhdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DeflatedTransferSyntax compresses the whole data set; Read refuses it.
const DeflatedTransferSyntax = "1.2.840.10008.1.2.1.99"

// Transfer syntaxes and the SOP class read differently.
const (
	implicitLittleEndian  = "1.2.840.10008.1.2"
	explicitBigEndian     = "1.2.840.10008.1.2.2"
	mediaDirectoryStorage = "1.2.840.10008.1.3.10" // a DICOMDIR
)

// ErrUnreadable is a DICOM file whose identifying attributes cannot be read.
var ErrUnreadable = errors.New("DICOM attributes cannot be read")

// Header holds the attributes the intake indexes and matches on, as the
// file writes them (padding removed).
type Header struct {
	PatientID         string // (0010,0020): the hospital's MRN when the study is ours
	StudyUID          string // (0020,000D)
	SeriesUID         string // (0020,000E)
	InstanceUID       string // (0008,0018) SOP Instance UID
	SOPClassUID       string // (0008,0016)
	Modality          string // (0008,0060)
	StudyDate         string // (0008,0020) DA, YYYYMMDD
	StudyTime         string // (0008,0030) TM
	Description       string // (0008,1030) Study Description
	MediaStorageClass string // (0002,0002)
	TransferSyntax    string // (0002,0010)
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
var wanted = map[uint32]func(h *Header) *string{
	0x00080016: func(h *Header) *string { return &h.SOPClassUID },
	0x00080018: func(h *Header) *string { return &h.InstanceUID },
	0x00080020: func(h *Header) *string { return &h.StudyDate },
	0x00080030: func(h *Header) *string { return &h.StudyTime },
	0x00080060: func(h *Header) *string { return &h.Modality },
	0x00081030: func(h *Header) *string { return &h.Description },
	0x00100020: func(h *Header) *string { return &h.PatientID },
	0x0020000D: func(h *Header) *string { return &h.StudyUID },
	0x0020000E: func(h *Header) *string { return &h.SeriesUID },
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

// Read reads the file meta group, then the top-level elements up to group
// 0x0020, skipping sequences. Errors wrap ErrUnreadable.
func Read(data []byte) (Header, error) {
	var h Header
	if len(data) < preambleLen+4 || string(data[preambleLen:preambleLen+4]) != "DICM" {
		return h, fmt.Errorf("%w: no DICM prefix", ErrUnreadable)
	}
	r := &elementReader{b: data, off: preambleLen + 4, order: binary.LittleEndian, explicit: true}
	if err := r.meta(&h); err != nil {
		return h, fmt.Errorf("%w: file meta information: %v", ErrUnreadable, err)
	}
	switch h.TransferSyntax {
	case DeflatedTransferSyntax:
		return h, fmt.Errorf("%w: deflated transfer syntax is not indexed; inflate the file first", ErrUnreadable)
	case implicitLittleEndian:
		r.explicit = false
	case explicitBigEndian:
		r.order = binary.BigEndian
	}
	if err := r.dataset(&h); err != nil {
		return h, fmt.Errorf("%w: %v", ErrUnreadable, err)
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
func (r *elementReader) meta(h *Header) error {
	for r.off+4 <= len(r.b) && binary.LittleEndian.Uint16(r.b[r.off:]) == 0x0002 {
		e, err := r.header()
		if err != nil {
			return err
		}
		if err := r.value(e, 0, func(v string) {
			switch e.tag {
			case tagTransferSyntax:
				h.TransferSyntax = v
			case tagMediaClass:
				h.MediaStorageClass = v
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

// dataset reads top-level elements until group 0x0020 is passed.
func (r *elementReader) dataset(h *Header) error {
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

// Directory reports whether the file is a DICOMDIR (a media index, not an
// image).
func (h Header) Directory() bool {
	return h.MediaStorageClass == mediaDirectoryStorage || h.SOPClassUID == mediaDirectoryStorage
}

// Missing names the attributes an image needs and lacks.
func (h Header) Missing() []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"Patient ID", h.PatientID}, {"Study Instance UID", h.StudyUID},
		{"Series Instance UID", h.SeriesUID}, {"SOP Instance UID", h.InstanceUID}} {
		if f.v == "" {
			out = append(out, f.name)
		}
	}
	return out
}

// Effective is the study's date and time, or zero when the file gives no
// usable date.
func (h Header) Effective() time.Time {
	if len(h.StudyDate) != 8 {
		return time.Time{}
	}
	t := h.StudyTime
	if i := strings.IndexByte(t, '.'); i >= 0 {
		t = t[:i]
	}
	for _, layout := range []string{"20060102150405", "200601021504", "2006010215", "20060102"} {
		if v, err := time.Parse(layout, h.StudyDate+t); err == nil {
			return v
		}
	}
	if v, err := time.Parse("20060102", h.StudyDate); err == nil {
		return v
	}
	return time.Time{}
}

// ZeroPreamble clears the 128-byte preamble of a Part 10 file, where a
// polyglot keeps an executable header (CVE-2019-11687), so what PACS
// stores is never runnable.
func ZeroPreamble(b []byte) {
	if len(b) >= preambleLen+4 && string(b[preambleLen:preambleLen+4]) == "DICM" {
		clear(b[:preambleLen])
	}
}
