package iso9660

import (
	"errors"
	"fmt"
	"io"
	"path"
)

// WalkFunc is called for every file and directory below the root. A
// non-nil err says the entry could not be read (a bad record, an
// unsupported layout, a directory loop); the walk goes on with the rest.
// Returning an error stops the walk and Walk returns it.
type WalkFunc func(f File, err error) error

// Walk visits the tree depth first, in the order of the directory records.
func (im *Image) Walk(fn WalkFunc) error {
	w := &walker{im: im, fn: fn, visited: map[int64]bool{im.root.off: true}}
	return w.dir("", im.root, 0)
}

type walker struct {
	im      *Image
	fn      WalkFunc
	visited map[int64]bool // directory extents seen, against loops
	entries int
}

func (w *walker) dir(dirPath string, d record, depth int) error {
	if d.len > w.im.lim.MaxDirSize {
		return w.fn(File{Path: dirPath, Dir: true}, fmt.Errorf("directory is %d bytes, over the %d-byte limit", d.len, w.im.lim.MaxDirSize))
	}
	buf := make([]byte, d.len)
	if err := w.im.readAt(buf, d.off); err != nil {
		return w.fn(File{Path: dirPath, Dir: true}, fmt.Errorf("read directory: %w", err))
	}
	recs, err := w.im.records(buf)
	if err != nil {
		if err := w.fn(File{Path: dirPath, Dir: true}, err); err != nil {
			return err
		}
	}
	for _, f := range recs {
		if err := w.entry(dirPath, f, depth); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) entry(dirPath string, f fileRecords, depth int) error {
	w.entries++
	if w.entries > w.im.lim.MaxEntries {
		return fmt.Errorf("more than %d entries: %w", w.im.lim.MaxEntries, ErrLimit)
	}
	first := f.recs[0]
	file := File{Path: path.Join(dirPath, first.name), Dir: first.dir}
	if f.err != nil {
		return w.fn(file, f.err)
	}
	if !first.dir {
		return w.file(file, f.recs)
	}
	switch {
	case depth+1 > w.im.lim.MaxDepth:
		return fmt.Errorf("directories nested deeper than %d levels: %w", w.im.lim.MaxDepth, ErrLimit)
	case w.visited[first.off]:
		return w.fn(file, errors.New("directory loop: this directory's extent was already visited"))
	}
	w.visited[first.off] = true
	if err := w.fn(file, nil); err != nil {
		return err
	}
	return w.dir(file.Path, first, depth+1)
}

func (w *walker) file(file File, recs []record) error {
	for _, r := range recs {
		if r.unit != 0 || r.gap != 0 {
			return w.fn(file, errors.New("interleaved file layout is not supported"))
		}
		file.extents = append(file.extents, extent{off: r.off, len: r.len})
		file.Size += r.len
	}
	return w.fn(file, nil)
}

// fileRecords groups the records of one entry: several when a file spans
// multiple extents.
type fileRecords struct {
	recs []record
	err  error
}

// records parses a directory extent. Records never cross a sector; a
// zero length byte pads to the next one.
func (im *Image) records(buf []byte) ([]fileRecords, error) {
	var out []fileRecords
	var pending []record
	for pos := 0; pos < len(buf); {
		if buf[pos] == 0 {
			pos = (pos/sectorSize + 1) * sectorSize
			continue
		}
		end := min(len(buf), (pos/sectorSize+1)*sectorSize)
		rec, n, err := im.parseRecord(buf[pos:end], pos)
		if n == 0 {
			return out, err
		}
		pos += n
		if rec.name == "\x00" || rec.name == "\x01" {
			continue
		}
		if err != nil {
			out = append(out, fileRecords{recs: []record{rec}, err: err})
			continue
		}
		pending = append(pending, rec)
		if !rec.multi {
			out = append(out, fileRecords{recs: pending})
			pending = nil
		}
	}
	if len(pending) > 0 {
		out = append(out, fileRecords{recs: pending, err: errors.New("multi-extent file has no final extent")})
	}
	return out, nil
}

// Open returns the content of a file as a reader with random access.
func (im *Image) Open(f File) *io.SectionReader {
	if len(f.extents) == 1 {
		return io.NewSectionReader(im.r, f.extents[0].off, f.extents[0].len)
	}
	return io.NewSectionReader(&extentReader{r: im.r, ext: f.extents}, 0, f.Size)
}

// extentReader joins the extents of a multi-extent file.
type extentReader struct {
	r   io.ReaderAt
	ext []extent
}

func (e *extentReader) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for _, x := range e.ext {
		if len(b) == 0 {
			break
		}
		if off >= x.len {
			off -= x.len
			continue
		}
		m, err := e.r.ReadAt(b[:min(int64(len(b)), x.len-off)], x.off+off)
		n += m
		if err != nil && !(errors.Is(err, io.EOF) && int64(m) == min(int64(len(b)), x.len-off)) {
			return n, err
		}
		b, off = b[m:], 0
	}
	if len(b) > 0 {
		return n, io.EOF
	}
	return n, nil
}
