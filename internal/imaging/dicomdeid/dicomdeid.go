// Package dicomdeid de-identifies DICOM files with the Basic Application
// Level Confidentiality Profile of DICOM PS3.15 Annex E and four of its
// options, for images leaving the PACS (location 5 of the paper) towards a
// medical-AI team, a research registry or an external agency (locations 8,
// 10 and 11).
//
// The profile's attribute table (PS3.15 Table E.1-1) is data in
// table_e1_1.txt; every action in it is applied wherever the attribute
// appears, nested sequences included. UIDs are replaced by keyed HMACs of
// the originals, so the same study keeps one new UID across files and runs
// that share a project secret; private attributes are removed; Patient
// Identity Removed and the De-identification Method attributes record what
// was done. Files whose pixels carry burned-in text are refused unless the
// caller accepts them.
//
// Every file is checked structurally before the DICOM library parses it,
// so malformed or hostile files get an error, never a crash or an
// unbounded allocation.
package dicomdeid

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/suyashkumar/dicom"
)

// Errors callers branch on. Each says what to do with the file.
var (
	// ErrNotDICOM: the input is not a DICOM Part 10 file (no "DICM" after
	// the preamble). Skip it or send it to the scanner as an unknown file.
	ErrNotDICOM = errors.New("not a DICOM Part 10 file")
	// ErrMalformed: the file's structure is broken (truncated, lengths past
	// the end, items outside sequences). It cannot be de-identified; keep
	// it out of the dataset and report it to the sender.
	ErrMalformed = errors.New("malformed DICOM")
	// ErrUnsupported: a valid file medsec cannot process (deflated or big
	// endian transfer syntax, a VR the DICOM library cannot read). Convert
	// it with another tool first, or leave it out.
	ErrUnsupported = errors.New("unsupported DICOM encoding")
	// ErrLimit: the file exceeds a resource limit of Options (size,
	// nesting depth, element count). Raise the limit if the file is
	// trusted, otherwise treat it as hostile.
	ErrLimit = errors.New("DICOM file exceeds a limit")
	// ErrBurnedInAnnotation: Burned In Annotation (0028,0301) is YES, so the
	// pixels may show the patient's name. Clean the pixels first, or set
	// Options.AcceptBurnedIn when a person has checked the images.
	ErrBurnedInAnnotation = errors.New("image has burned-in annotation")
)

// Defaults for the limits of Options.
const (
	DefaultMaxFileSize      = 1 << 30
	DefaultMaxDepth         = 64
	DefaultMaxElements      = 1 << 20
	DefaultMaxDateShiftDays = 3650
)

// Options choose the profile options and the keys. The zero value of each
// option means the Basic Profile alone.
type Options struct {
	// ProjectSecret keys UID replacement, default pseudonyms and date
	// shifts: files de-identified with one secret share new UIDs and
	// pseudonyms. At least 32 bytes; keep it secret, since whoever holds it
	// can test a guess of an original ID.
	ProjectSecret []byte `json:"-"`

	// RetainLongitudinalModifiedDates applies the Retain Longitudinal
	// Temporal Information with Modified Dates Option: dates are shifted
	// back by a whole number of days derived from the original Patient ID,
	// the same for every file of that patient, so intervals are kept; times
	// of day are kept.
	RetainLongitudinalModifiedDates bool
	// RetainPatientCharacteristics keeps sex, age, size, weight, ethnic
	// group, smoking and pregnancy status, and cleans allergies, patient
	// state, pre-medication and special needs.
	RetainPatientCharacteristics bool
	// CleanDescriptors keeps descriptions, comments and labels with the
	// identifying text taken out instead of removing them.
	CleanDescriptors bool
	// RetainDeviceIdentity keeps station names, serial numbers and other
	// device identifiers.
	RetainDeviceIdentity bool

	// CleanText cleans free text for CleanDescriptors after the file's own
	// names and IDs have been blanked. Nil uses a built-in cleaner (digit
	// runs, dates, phone and resident registration numbers, e-mail). The
	// free-text de-identifier of internal/deid/text plugs in here.
	CleanText func(string) string
	// Pseudonym gives the new Patient ID and Patient's Name for an
	// original Patient ID. Nil uses "ANON" + 16 hex digits of a keyed HMAC.
	Pseudonym func(originalPatientID string) string
	// SafePrivate lists private attributes known to carry no identity,
	// which are kept; every other private attribute is removed. Empty by
	// default.
	SafePrivate []PrivateAttribute
	// AcceptBurnedIn de-identifies images whose Burned In Annotation is
	// YES instead of refusing them; their pixels are not cleaned.
	AcceptBurnedIn bool

	// MaxFileSize bounds memory too: a file is held in memory with its
	// parsed copy and its output, about three times its size per worker.
	MaxFileSize      int64 // bytes; DefaultMaxFileSize when 0
	MaxDepth         int   // sequence nesting; DefaultMaxDepth when 0
	MaxElements      int   // per file; DefaultMaxElements when 0
	MaxDateShiftDays int   // dates move back 1..N days; DefaultMaxDateShiftDays when 0
	// Workers is how many files Dir de-identifies at once; 2 when 0.
	Workers int
}

// PrivateAttribute names a private attribute by its creator and the low
// byte of its element number, as PS3.15 E.3.10 does: (gggg,xxEE).
type PrivateAttribute struct {
	Creator string
	Group   uint16
	Element uint8
}

// Deidentifier applies one set of Options. It is safe for concurrent use.
type Deidentifier struct {
	opts     Options
	enabled  []string // option keys of the table that opts switch on
	rules    *ruleSet
	uidKey   []byte
	dateKey  []byte
	aliasKey []byte
	bufs     sync.Pool
}

// New checks opts and derives the keys.
func New(opts Options) (*Deidentifier, error) {
	if len(opts.ProjectSecret) < 32 {
		return nil, fmt.Errorf("new dicom de-identifier: project secret of %d bytes, want at least 32", len(opts.ProjectSecret))
	}
	rules, err := loadRules()
	if err != nil {
		return nil, fmt.Errorf("new dicom de-identifier: %w", err)
	}
	d := &Deidentifier{opts: withDefaults(opts), rules: rules, enabled: enabledOptions(opts)}
	for label, key := range map[string]*[]byte{"uid": &d.uidKey, "date": &d.dateKey, "alias": &d.aliasKey} {
		k, err := hkdf.Key(sha256.New, opts.ProjectSecret, nil, "medsec dicomdeid "+label+" v1", 32)
		if err != nil {
			return nil, fmt.Errorf("new dicom de-identifier: derive %s key: %w", label, err)
		}
		*key = k
	}
	d.bufs.New = func() any { return new(bytes.Buffer) }
	return d, nil
}

func enabledOptions(o Options) []string {
	var keys []string
	for key, on := range map[string]bool{
		optModifiedDates: o.RetainLongitudinalModifiedDates,
		optPatientChars:  o.RetainPatientCharacteristics,
		optDescriptors:   o.CleanDescriptors,
		optDevice:        o.RetainDeviceIdentity,
	} {
		if on {
			keys = append(keys, key)
		}
	}
	return keys
}

func withDefaults(o Options) Options {
	o.ProjectSecret = nil // only the derived keys are kept
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxElements <= 0 {
		o.MaxElements = DefaultMaxElements
	}
	if o.MaxDateShiftDays <= 0 {
		o.MaxDateShiftDays = DefaultMaxDateShiftDays
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	return o
}

// File de-identifies one DICOM file from in and writes the result to out.
// Nothing is written to out unless the whole file was de-identified.
func (d *Deidentifier) File(ctx context.Context, in io.Reader, out io.Writer) (Report, error) {
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	// The parser copies every value out of the input, so the input buffer
	// goes back to the pool with the output buffer.
	inBuf := d.bufs.Get().(*bytes.Buffer)
	defer d.putBuffer(inBuf)
	data, err := readAll(in, d.opts.MaxFileSize, inBuf)
	if err != nil {
		return Report{}, err
	}
	buf := d.bufs.Get().(*bytes.Buffer)
	defer d.putBuffer(buf)
	rep, err := d.bytes(data, buf)
	if err != nil {
		return Report{}, err
	}
	if _, err := out.Write(buf.Bytes()); err != nil {
		return Report{}, fmt.Errorf("write de-identified file: %w", err)
	}
	return rep, nil
}

func (d *Deidentifier) putBuffer(b *bytes.Buffer) {
	if b.Cap() > 64<<20 { // let a huge file's buffer go
		return
	}
	b.Reset()
	d.bufs.Put(b)
}

func readAll(in io.Reader, max int64, buf *bytes.Buffer) ([]byte, error) {
	if s, ok := in.(interface{ Stat() (os.FileInfo, error) }); ok {
		if info, err := s.Stat(); err == nil && info.Size() <= max {
			buf.Grow(int(info.Size()) + bytes.MinRead)
		}
	}
	if _, err := buf.ReadFrom(io.LimitReader(in, max+1)); err != nil {
		return nil, fmt.Errorf("read dicom file: %w", err)
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrLimit, max)
	}
	return buf.Bytes(), nil
}

// bytes de-identifies one file held in memory into buf.
func (d *Deidentifier) bytes(data []byte, buf *bytes.Buffer) (Report, error) {
	g, err := guard(data, limits{maxDepth: d.opts.MaxDepth, maxElements: d.opts.MaxElements})
	if err != nil {
		return Report{}, err
	}
	ds, err := parse(g.data)
	if err != nil {
		return Report{}, err
	}
	if burnedIn(ds) && !d.opts.AcceptBurnedIn {
		return Report{}, ErrBurnedInAnnotation
	}
	rep := d.apply(&ds, g)
	if err := dicom.Write(buf, ds, dicom.SkipVRVerification()); err != nil {
		return Report{}, fmt.Errorf("write de-identified dicom: %w", err)
	}
	zeroPreamble(buf.Bytes())
	return rep, nil
}

// recoverParserPanics is switched off by the fuzz test, so that an input
// the guard lets through and the parser panics on is found, not hidden.
var recoverParserPanics = true

// parse runs the library's parser on a file the guard accepted. The
// recover is a last line of defence: the guard is meant to keep every
// input that could panic the parser away from it.
func parse(data []byte) (ds dicom.Dataset, err error) {
	if recoverParserPanics {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: parser failed", ErrMalformed)
			}
		}()
	}
	ds, err = dicom.Parse(bytes.NewReader(data), int64(len(data)), nil, dicom.SkipProcessingPixelDataValue())
	if err != nil {
		return dicom.Dataset{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return ds, nil
}

func burnedIn(ds dicom.Dataset) bool {
	for _, e := range ds.Elements {
		if e.Tag.Group == 0x0028 && e.Tag.Element == 0x0301 {
			return strings.EqualFold(firstString(e), "YES")
		}
	}
	return false
}

// zeroPreamble clears the 128-byte preamble, where a polyglot file keeps an
// executable header (CVE-2019-11687). The library writes zeros already;
// this keeps the guarantee if that ever changes.
func zeroPreamble(b []byte) {
	if len(b) >= 128 {
		clear(b[:128])
	}
}
