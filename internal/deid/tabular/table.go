package tabular

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Sentinel errors callers branch on.
var (
	// ErrEmpty means the table has no header or no rows; there is nothing
	// to de-identify, so the caller should check the cohort or the file.
	ErrEmpty = errors.New("empty table")
	// ErrBadCSV means the input is not well-formed CSV (broken quoting,
	// ragged rows, bad UTF-8, duplicate headers); the message names the line
	// and column so the sender can fix the export.
	ErrBadCSV = errors.New("malformed csv")
	// ErrSpec means the spec does not fit the table (a missing column, a
	// column named twice, a bad hierarchy); the message says which.
	ErrSpec = errors.New("invalid de-identification spec")
	// ErrUnreachable means no generalization meets the privacy model within
	// the suppression limit; the message says the best that is reachable so
	// the spec can be relaxed or more quasi-identifiers allowed to generalize.
	ErrUnreachable = errors.New("privacy target unreachable")
	// ErrRiskTooHigh means the de-identified table is above the spec's risk
	// limit; the error is a *RiskError naming the quasi-identifiers that
	// drive the risk. Do not release the table.
	ErrRiskTooHigh = errors.New("re-identification risk above limit")
	// ErrNoSecret means the spec pseudonymizes or shifts dates but no
	// per-dataset secret of at least 32 bytes was given.
	ErrNoSecret = errors.New("per-dataset secret missing or shorter than 32 bytes")
)

// Table is rows of string cells under named columns. Every row has one cell
// per column.
type Table struct {
	Columns []string
	Rows    [][]string
}

// Index returns the position of the named column, or -1.
func (t *Table) Index(name string) int {
	for i, c := range t.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Column returns a copy of the named column's cells, or nil when absent.
func (t *Table) Column(name string) []string {
	i := t.Index(name)
	if i < 0 {
		return nil
	}
	out := make([]string, len(t.Rows))
	for r, row := range t.Rows {
		out[r] = row[i]
	}
	return out
}

// ReadCSV reads a comma-separated table with a header line. It rejects what
// would otherwise be silently misread: broken quoting, rows with a different
// number of cells than the header, text that is not UTF-8 (Korean exports in
// EUC-KR/CP949 must be converted first), duplicate or empty column names, and
// a file without rows. Errors name the line and column, never the cell value.
func ReadCSV(r io.Reader) (*Table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read csv: no header line: %w", ErrEmpty)
	}
	if err != nil {
		return nil, csvError(err)
	}
	if err := checkHeader(header); err != nil {
		return nil, err
	}
	t := &Table{Columns: header}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		if err := checkUTF8(cr, header, rec, len(t.Rows)+1); err != nil {
			return nil, err
		}
		t.Rows = append(t.Rows, rec)
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("read csv: header but no rows: %w", ErrEmpty)
	}
	return t, nil
}

// csvError rewords encoding/csv's errors without the offending text.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("read csv: line %d, column %d: %v: %w", pe.Line, pe.Column, pe.Err, ErrBadCSV)
	}
	return fmt.Errorf("read csv: %w", err)
}

func checkHeader(header []string) error {
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	seen := make(map[string]int, len(header))
	for i, h := range header {
		if !utf8.ValidString(h) {
			return fmt.Errorf("read csv: header column %d is not valid UTF-8 (convert EUC-KR/CP949 exports to UTF-8): %w", i+1, ErrBadCSV)
		}
		h = strings.TrimSpace(h)
		header[i] = h
		if h == "" {
			return fmt.Errorf("read csv: header column %d is empty: %w", i+1, ErrBadCSV)
		}
		if j, dup := seen[h]; dup {
			return fmt.Errorf("read csv: column %q appears twice in the header (columns %d and %d): %w", h, j+1, i+1, ErrBadCSV)
		}
		seen[h] = i
	}
	return nil
}

func checkUTF8(cr *csv.Reader, header, rec []string, row int) error {
	for i, cell := range rec {
		if utf8.ValidString(cell) {
			continue
		}
		line, _ := cr.FieldPos(i)
		return fmt.Errorf("read csv: row %d (line %d), column %d %q: invalid UTF-8 (convert EUC-KR/CP949 exports to UTF-8): %w",
			row, line, i+1, header[i], ErrBadCSV)
	}
	return nil
}

// WriteCSV writes the table with its header.
func WriteCSV(w io.Writer, t *Table) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return fmt.Errorf("write csv header: %w", err)
	}
	if err := cw.WriteAll(t.Rows); err != nil {
		return fmt.Errorf("write csv rows: %w", err)
	}
	return nil
}
