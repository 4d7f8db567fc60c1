// Package iso9660 reads the directory tree of an ISO 9660 image, the
// format of CDs and DVDs that bring MRI and CT studies into a hospital
// (paper location 5, PACS intake). It exists so the guard scanner can look
// inside an .iso without mounting it.
//
// The image is untrusted: every declared location and length is checked
// against the image size and the caller's limits before it is used,
// directory loops are refused, and nothing is read whole except one
// directory extent of bounded size. Joliet names are used when the image
// has them; Rock Ridge and UDF are not read (their files still appear
// under their ISO 9660 names).
package iso9660

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// ErrNotISO means the bytes hold no ISO 9660 volume descriptor.
var ErrNotISO = errors.New("not an ISO 9660 image")

// ErrLimit means the image declares more than the limits allow (entries,
// depth, directory size); treat the image as a decompression-bomb-like
// hazard and do not trust its contents.
var ErrLimit = errors.New("iso9660 image exceeds a limit")

const (
	sectorSize   = 2048
	firstVDBlock = 16
	maxVDs       = 64
	minRecordLen = 34
)

// Limits bound the work one image may cause.
type Limits struct {
	MaxDepth   int   // directory levels below the root
	MaxEntries int   // files and directories in all
	MaxDirSize int64 // bytes of one directory's records
}

// DefaultLimits are generous for real media: ISO 9660 allows 8 levels and
// a DICOM CD holds a few thousand files.
var DefaultLimits = Limits{MaxDepth: 32, MaxEntries: 200_000, MaxDirSize: 4 << 20}

// Image is an opened ISO 9660 image.
type Image struct {
	r      io.ReaderAt
	size   int64
	block  int64
	root   record
	joliet bool
	label  string
	lim    Limits
}

// File is one entry of the tree.
type File struct {
	Path    string // slash-separated from the root, no leading slash
	Size    int64
	Dir     bool
	extents []extent
}

type extent struct{ off, len int64 }

// record is a parsed directory record.
type record struct {
	name     string
	off, len int64
	dir      bool
	multi    bool
	unit     byte
	gap      byte
}

// Open reads the volume descriptors of the image in r, size bytes long.
func Open(r io.ReaderAt, size int64, lim Limits) (*Image, error) {
	im := &Image{r: r, size: size, lim: lim}
	var primary, joliet []byte
	for i := int64(0); i < maxVDs; i++ {
		vd := make([]byte, sectorSize)
		if err := im.readAt(vd, (firstVDBlock+i)*sectorSize); err != nil {
			if i == 0 {
				return nil, fmt.Errorf("read volume descriptor: %w", ErrNotISO)
			}
			return nil, fmt.Errorf("read volume descriptor %d: %w", i, err)
		}
		if string(vd[1:6]) != "CD001" {
			if i == 0 {
				return nil, ErrNotISO
			}
			break
		}
		switch {
		case vd[0] == 255:
			i = maxVDs
		case vd[0] == 1 && primary == nil:
			primary = vd
		case vd[0] == 2 && isJoliet(vd):
			joliet = vd
		}
	}
	if primary == nil {
		return nil, fmt.Errorf("no primary volume descriptor: %w", ErrNotISO)
	}
	im.label = strings.TrimSpace(string(primary[40:72]))
	if joliet != nil {
		if err := im.useDescriptor(joliet); err == nil {
			im.joliet = true
			return im, nil
		}
	}
	if err := im.useDescriptor(primary); err != nil {
		return nil, err
	}
	return im, nil
}

func isJoliet(vd []byte) bool {
	esc := string(vd[88:91])
	return esc == "%/@" || esc == "%/C" || esc == "%/E"
}

func (im *Image) useDescriptor(vd []byte) error {
	im.block = int64(binary.LittleEndian.Uint16(vd[128:]))
	if im.block != 512 && im.block != 1024 && im.block != 2048 {
		return fmt.Errorf("logical block size %d: %w", im.block, ErrNotISO)
	}
	rec, _, err := im.parseRecord(vd[156:190], 0)
	if err != nil {
		return fmt.Errorf("root directory record: %w", err)
	}
	if !rec.dir {
		return fmt.Errorf("root directory record is not a directory: %w", ErrNotISO)
	}
	im.root = rec
	return nil
}

// Label is the volume identifier, e.g. the CD's title.
func (im *Image) Label() string { return im.label }

// Joliet reports whether names come from a Joliet descriptor.
func (im *Image) Joliet() bool { return im.joliet }

func (im *Image) readAt(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > im.size {
		return fmt.Errorf("read %d bytes at %d: past the image end (%d)", len(b), off, im.size)
	}
	_, err := im.r.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// parseRecord reads the directory record at b[0:]; n is its length.
func (im *Image) parseRecord(b []byte, pos int) (record, int, error) {
	n := int(b[0])
	if n < minRecordLen || n > len(b) {
		return record{}, 0, fmt.Errorf("directory record at %d: length %d out of range", pos, n)
	}
	lfi := int(b[32])
	if 33+lfi > n {
		return record{}, 0, fmt.Errorf("directory record at %d: name runs past the record", pos)
	}
	ext := int64(b[1])
	loc := int64(binary.LittleEndian.Uint32(b[2:]))
	rec := record{
		name:  im.decodeName(b[33 : 33+lfi]),
		off:   (loc + ext) * im.block,
		len:   int64(binary.LittleEndian.Uint32(b[10:])),
		dir:   b[25]&0x02 != 0,
		multi: b[25]&0x80 != 0,
		unit:  b[26],
		gap:   b[27],
	}
	if rec.off < 0 || rec.off+rec.len > im.size {
		return rec, n, fmt.Errorf("%q: extent at %d, %d bytes, runs past the image end (%d)", rec.name, rec.off, rec.len, im.size)
	}
	return rec, n, nil
}

// decodeName turns an identifier into a usable name: Joliet UCS-2, the
// ";1" version suffix and a bare trailing dot removed, separators replaced.
func (im *Image) decodeName(id []byte) string {
	if len(id) == 1 && id[0] <= 1 {
		return string(id)
	}
	name := string(id)
	if im.joliet {
		u := make([]uint16, len(id)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(id[2*i:])
		}
		name = string(utf16.Decode(u))
	}
	if i := strings.LastIndexByte(name, ';'); i > 0 {
		name = name[:i]
	}
	if strings.HasSuffix(name, ".") && len(name) > 1 {
		name = strings.TrimSuffix(name, ".")
	}
	return strings.NewReplacer("/", "_", "\x00", "_", "\\", "_").Replace(name)
}
