package docsec

import (
	"fmt"
	"strings"
	"time"
)

// The invisible marker is the packed, authenticated mark written in
// zero-width characters: a word joiner opens and closes it, and zero-width
// space and zero-width non-joiner are the bits 0 and 1. It follows the
// visible header and every line of the text, so a fragment copied out of
// the document still carries it; it changes nothing a reader sees.
const (
	markOpen  = '\u2060' // word joiner
	markClose = '\u2060'
	bit0      = '\u200b' // zero-width space
	bit1      = '\u200c' // zero-width non-joiner
)

// Watermark returns the document as exported: a visible header and footer
// naming exporter, time, purpose and export id, and the invisible marker
// after every line.
func Watermark(text string, m Mark, key []byte) []byte {
	hidden := invisible(encodeMark(m, key))
	banner := fmt.Sprintf("CONFIDENTIAL — exported by %s (%s) on %s for %s — export %s — do not copy or forward",
		m.Username, m.StaffID, m.At.UTC().Format(time.RFC3339), m.Purpose, m.ExportID)
	var b strings.Builder
	b.WriteString(banner + hidden + "\n\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(line + hidden + "\n")
	}
	b.WriteString("\n" + banner + hidden + "\n")
	return []byte(b.String())
}

func invisible(data []byte) string {
	var b strings.Builder
	b.WriteRune(markOpen)
	for _, c := range data {
		for i := 7; i >= 0; i-- {
			if c>>i&1 == 1 {
				b.WriteRune(bit1)
			} else {
				b.WriteRune(bit0)
			}
		}
	}
	b.WriteRune(markClose)
	return b.String()
}

// ReadMark finds the first marker in text that verifies under key.
func ReadMark(text, key []byte) (Mark, error) {
	for _, data := range hiddenRuns(string(text)) {
		if m, ok := decodeMark(data, key); ok {
			return m, nil
		}
	}
	return Mark{}, ErrNoMarker
}

// hiddenRuns collects the bit runs between marker delimiters.
func hiddenRuns(s string) [][]byte {
	var runs [][]byte
	var bits []byte
	in := false
	for _, r := range s {
		switch {
		case r == markOpen && !in:
			in, bits = true, bits[:0]
		case r == markClose && in:
			if len(bits)%8 == 0 && len(bits) > 0 {
				runs = append(runs, packBits(bits))
			}
			in = false
		case in && (r == bit0 || r == bit1):
			bits = append(bits, byte(r-bit0))
		case in:
			in = false // anything else breaks the run
		}
	}
	return runs
}

func packBits(bits []byte) []byte {
	out := make([]byte, len(bits)/8)
	for i, bit := range bits {
		out[i/8] |= bit << (7 - i%8)
	}
	return out
}
