package dataset

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/medsec/medsec/internal/deid/tabular"
)

// ErrBadParquet means a Parquet file could not be read: truncated, not
// Parquet, or with nested columns. The message says which; convert or
// re-export the file.
var ErrBadParquet = errors.New("unreadable parquet file")

// DataFile is the name of the data file in a dataset of the format.
func DataFile(format string) string { return "data." + format }

// WriteTableFile writes t to path in format (parquet, csv or ndjson)
// through a temporary file in the same directory that is synced and
// renamed into place, so a reader never sees half a file. It returns the
// file's entry for a manifest.
func WriteTableFile(path, format string, t *tabular.Table) (FileEntry, error) {
	if !validFormat(format) {
		return FileEntry{}, fmt.Errorf("format %q: want parquet, csv or ndjson", format)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return FileEntry{}, fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := writeTable(cw, format, t); err != nil {
		tmp.Close()
		return FileEntry{}, fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := closeSynced(tmp); err != nil {
		return FileEntry{}, fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return FileEntry{}, fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return FileEntry{Name: filepath.Base(path), SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: cw.n, Rows: len(t.Rows)}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeTable(w io.Writer, format string, t *tabular.Table) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var err error
	switch format {
	case FormatCSV:
		err = tabular.WriteCSV(bw, t)
	case FormatNDJSON:
		err = writeNDJSON(bw, t)
	case FormatParquet:
		err = writeParquet(bw, t)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writeNDJSON writes one JSON object per row, keys in column order.
func writeNDJSON(w *bufio.Writer, t *tabular.Table) error {
	keys := make([][]byte, len(t.Columns))
	for i, c := range t.Columns {
		k, err := json.Marshal(c)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	for _, row := range t.Rows {
		w.WriteByte('{')
		for i, cell := range row {
			if i > 0 {
				w.WriteByte(',')
			}
			v, err := json.Marshal(cell)
			if err != nil {
				return err
			}
			w.Write(keys[i])
			w.WriteByte(':')
			w.Write(v)
		}
		if _, err := w.WriteString("}\n"); err != nil {
			return err
		}
	}
	return nil
}

// parquetRowGroup bounds the rows buffered before a row group is flushed.
const parquetRowGroup = 64 << 10

// writeParquet writes every column as a UTF-8 string column (a dataset's
// cells are generalized text: "40-49", "2023-03", "*"), zstd-compressed.
func writeParquet(w io.Writer, t *tabular.Table) error {
	group := parquet.Group{}
	for _, c := range t.Columns {
		group[c] = parquet.Compressed(parquet.String(), &parquet.Zstd)
	}
	schema := parquet.NewSchema("dataset", group)
	pos := make([]int, len(t.Columns)) // schema column → table column
	for i, path := range schema.Columns() {
		pos[i] = tableIndex(t, path[0])
	}
	pw := parquet.NewWriter(w, schema)
	rows := make([]parquet.Row, 0, 1024)
	for r, cells := range t.Rows {
		row := make(parquet.Row, len(pos))
		for i, p := range pos {
			row[i] = parquet.ByteArrayValue([]byte(cells[p])).Level(0, 0, i)
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) || r == len(t.Rows)-1 {
			if _, err := pw.WriteRows(rows); err != nil {
				return err
			}
			rows = rows[:0]
		}
		if (r+1)%parquetRowGroup == 0 {
			if err := pw.Flush(); err != nil {
				return err
			}
		}
	}
	return pw.Close()
}

func tableIndex(t *tabular.Table, name string) int {
	for i, c := range t.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// ReadParquet reads a flat Parquet file into a table of text cells (nulls
// become empty cells, numbers their decimal text). Columns come in the
// file's schema order. A truncated or foreign file gives ErrBadParquet.
func ReadParquet(r io.ReaderAt, size int64) (t *tabular.Table, err error) {
	defer func() {
		// The library trusts the footer it has checked; a malformed page
		// can still make it panic. A bad file is an error, not a crash.
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("read parquet: malformed file (%v): %w", p, ErrBadParquet)
		}
	}()
	if err := checkParquetFrame(r, size); err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("read parquet: %v: %w", err, ErrBadParquet)
	}
	cols := f.Schema().Columns()
	t = &tabular.Table{}
	for _, c := range cols {
		if len(c) != 1 {
			return nil, fmt.Errorf("read parquet: column %q is nested; only flat tables are read: %w", strings.Join(c, "."), ErrBadParquet)
		}
		t.Columns = append(t.Columns, c[0])
	}
	if err := readRows(parquet.NewReader(f), t); err != nil {
		return nil, err
	}
	if int64(len(t.Rows)) != f.NumRows() {
		return nil, fmt.Errorf("read parquet: %d rows read, the footer says %d: %w", len(t.Rows), f.NumRows(), ErrBadParquet)
	}
	return t, nil
}

// checkParquetFrame checks the magic numbers and that the footer fits in
// the file before the library reads it: the library allocates whatever
// footer length the last bytes claim, so a damaged file could make it
// allocate gigabytes.
func checkParquetFrame(r io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size < 12 {
		return fmt.Errorf("read parquet: %d bytes is too short for a Parquet file: %w", size, ErrBadParquet)
	}
	head, tail := make([]byte, 4), make([]byte, 8)
	if _, err := r.ReadAt(head, 0); err != nil {
		return fmt.Errorf("read parquet: %v: %w", err, ErrBadParquet)
	}
	if _, err := r.ReadAt(tail, size-8); err != nil {
		return fmt.Errorf("read parquet: %v: %w", err, ErrBadParquet)
	}
	if string(head) != magic || string(tail[4:]) != magic {
		return fmt.Errorf("read parquet: no Parquet magic number at the start and end (truncated, or not Parquet): %w", ErrBadParquet)
	}
	if footer := int64(binary.LittleEndian.Uint32(tail[:4])); footer > size-12 {
		return fmt.Errorf("read parquet: the footer claims %d bytes, more than the file holds (truncated or damaged): %w", footer, ErrBadParquet)
	}
	return nil
}

func readRows(pr *parquet.Reader, t *tabular.Table) error {
	defer pr.Close()
	buf := make([]parquet.Row, 256)
	for {
		n, err := pr.ReadRows(buf)
		for _, row := range buf[:n] {
			if len(row) != len(t.Columns) {
				return fmt.Errorf("read parquet: row %d has %d values for %d columns (repeated fields are not read): %w", len(t.Rows)+1, len(row), len(t.Columns), ErrBadParquet)
			}
			cells := make([]string, len(row))
			for i, v := range row {
				if !v.IsNull() {
					cells[i] = v.String()
				}
			}
			t.Rows = append(t.Rows, cells)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read parquet: row %d: %v: %w", len(t.Rows)+1, err, ErrBadParquet)
		}
	}
}

// ReadTableFile reads a CSV (header line, UTF-8) or Parquet file, by its
// extension, for `medsec deid table` and `medsec risk`.
func ReadTableFile(path string) (*tabular.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".parquet") {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		return ReadParquet(f, st.Size())
	}
	return tabular.ReadCSV(bufio.NewReaderSize(f, 256<<10))
}

// hashFile returns the SHA-256 (hex) and size of a file.
func hashFile(fsys fs.FS, name string) (string, int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hexSum(h), n, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
