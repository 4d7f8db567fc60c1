package text

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
)

// Mode says what replaces a finding.
type Mode int

const (
	// Tags replaces each finding with its kind in brackets: "[NAME]".
	Tags Mode = iota
	// Surrogates replaces each finding with a realistic fake value of the
	// same kind and script, chosen by a keyed hash so that the same value
	// always gets the same surrogate under the same secret: Hangul names
	// become Hangul names, romanized Korean names romanized ones, Western
	// names Western ones of the same sex where the lists know it; dates move
	// by one shift in their own notation; phone numbers keep their country
	// and Korean area prefix, North American ones become 555-01xx numbers;
	// ages over 89 become 90; SSNs get a never-issued 9xx area; registration
	// numbers keep the sex digit, shift the birth date and carry a wrong
	// check digit on purpose; e-mail, URLs and IPs move to reserved
	// example.org, 10.0.0.0/8 and 2001:db8::/32 values; other identifiers
	// keep their layout with keyed digits and letters.
	Surrogates
)

// DefaultMinConfidence is used when Options.MinConfidence is zero. It
// favours recall: a missed identifier is a leak, a redacted word is not.
const DefaultMinConfidence = 0.5

// Options configure a Redactor.
type Options struct {
	Mode Mode
	// Secret keys the surrogates (HMAC-SHA-256). Use one secret per
	// dataset: the same secret gives the same surrogates across notes, and
	// whoever holds it can test a guessed value against a surrogate, so keep
	// it with the dataset's other keys and never log it. When empty, a
	// random secret is drawn, so surrogates are consistent only within this
	// Redactor.
	Secret []byte
	// MinConfidence drops findings below it; zero means
	// DefaultMinConfidence.
	MinConfidence float64
	// DateShiftDays moves every date by this many days in surrogate mode.
	// Zero derives a shift of 1 to 365 days back from Secret. Pass the
	// patient's own shift to keep notes in line with tabular data.
	DateShiftDays int
}

// Redactor removes protected health information from notes. It is safe
// for concurrent use.
type Redactor struct {
	mode Mode
	min  float64
	surr *surrogates
}

// NewRedactor returns a Redactor for opt.
func NewRedactor(opt Options) *Redactor {
	r := &Redactor{mode: opt.Mode, min: opt.MinConfidence}
	if r.min <= 0 {
		r.min = DefaultMinConfidence
	}
	if opt.Mode == Surrogates {
		secret := opt.Secret
		if len(secret) == 0 {
			secret = make([]byte, 32)
			rand.Read(secret) // never fails: crypto/rand panics rather than return short
		}
		r.surr = newSurrogates(secret, opt.DateShiftDays)
	}
	return r
}

// Redact returns s with every finding at or above the minimum confidence
// replaced, and those findings (offsets refer to s).
func (r *Redactor) Redact(s string) (string, []Finding) {
	d, all := find(s)
	var kept []Finding
	for _, f := range all {
		if f.Confidence >= r.min {
			kept = append(kept, f)
		}
	}
	kept = sweep(d, kept) // again: findings below the threshold may have hidden occurrences
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	var note *noteSurrogates
	if r.mode == Surrogates {
		note = r.surr.forNote(s, kept)
	}
	last := 0
	for _, f := range kept {
		b.WriteString(s[last:f.Start])
		if note != nil {
			b.WriteString(note.replace(f))
		} else {
			b.WriteString("[" + string(f.Kind) + "]")
		}
		last = f.End
	}
	b.WriteString(s[last:])
	return b.String(), kept
}

// maxChunk bounds how much text is redacted at once by RedactReader;
// longer input is cut at blank lines (or line ends) so memory stays small.
const maxChunk = 1 << 20

// RedactReader reads notes from rd, redacts them with red and writes the
// result to w. Input longer than a megabyte is handled in pieces cut at
// paragraph boundaries; surrogates stay consistent across pieces because
// they are keyed, not remembered.
func RedactReader(ctx context.Context, rd io.Reader, w io.Writer, red *Redactor) error {
	br := bufio.NewReaderSize(rd, 64<<10)
	var pending strings.Builder
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redact text: %w", err)
		}
		line, err := br.ReadString('\n')
		pending.WriteString(line)
		atBreak := strings.TrimSpace(line) == "" || pending.Len() >= 2*maxChunk
		if err == nil && (pending.Len() < maxChunk || !atBreak) {
			continue
		}
		if werr := writeRedacted(w, red, pending.String()); werr != nil {
			return werr
		}
		pending.Reset()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("redact text: read input: %w", err)
		}
	}
}

func writeRedacted(w io.Writer, red *Redactor, s string) error {
	if s == "" {
		return nil
	}
	out, _ := red.Redact(s)
	if _, err := io.WriteString(w, out); err != nil {
		return fmt.Errorf("redact text: write output: %w", err)
	}
	return nil
}
