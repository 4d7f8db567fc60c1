package dicomdeid

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"strings"
	"time"

	"github.com/suyashkumar/dicom"
)

// UID returns the replacement for an original UID: "2.25." followed by the
// decimal value of the first 128 bits of HMAC-SHA256(project key, UID), the
// UUID-derived form of PS3.5 B.2. The same UID always gets the same
// replacement under one project secret.
func (d *Deidentifier) UID(original string) string {
	sum := d.mac(d.uidKey, original)
	return "2.25." + new(big.Int).SetBytes(sum[:16]).String()
}

// Pseudonym returns the new Patient ID and Patient's Name for an original
// Patient ID: Options.Pseudonym's answer, or "ANON" + 16 hex digits of a
// keyed HMAC.
func (d *Deidentifier) Pseudonym(originalPatientID string) string {
	if d.opts.Pseudonym != nil {
		return d.opts.Pseudonym(originalPatientID)
	}
	sum := d.mac(d.aliasKey, originalPatientID)
	return "ANON" + strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// DateShiftDays returns the (negative) number of days every date of a
// patient moves under the modified-dates option, so other de-identifiers
// (records, reports) can move that patient's dates by the same amount.
func (d *Deidentifier) DateShiftDays(originalPatientID string) int {
	sum := d.mac(d.dateKey, originalPatientID)
	return -1 - int(binary.BigEndian.Uint64(sum[:8])%uint64(d.opts.MaxDateShiftDays))
}

func (d *Deidentifier) mac(key []byte, msg string) [32]byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// fileContext holds what one file's attributes are changed with, read
// before any of them changes.
type fileContext struct {
	pseudonym string
	shiftDays int
	enhanced  bool
	scrub     *scrubber
}

func (d *Deidentifier) context(elems []*dicom.Element, meta fileMeta) *fileContext {
	fc := &fileContext{enhanced: enhancedSOPClasses[meta.sopClass], scrub: &scrubber{}}
	var patientID string
	for _, e := range elems {
		t := tagOf(e)
		switch {
		case t == patientIDTag:
			patientID = firstString(e)
		case t == sopClassTag:
			fc.enhanced = fc.enhanced || enhancedSOPClasses[firstString(e)]
		}
		if d.opts.CleanDescriptors || d.opts.RetainPatientCharacteristics {
			fc.scrub.collect(t, e)
		}
	}
	fc.pseudonym = d.Pseudonym(patientID)
	fc.shiftDays = d.DateShiftDays(patientID)
	return fc
}

// zero empties a value, except that Patient's Name and Patient ID get the
// pseudonym: Z allows "a non-zero length value that may be a dummy value",
// and a pseudonym keeps one patient's files together.
func (p *pass) zero(e *dicom.Element, t Tag) Action {
	if t == patientNameTag || t == patientIDTag {
		e.Value, e.ValueLength = newValue([]string{p.fc.pseudonym}), 0
		return Dummy
	}
	e.Value, e.ValueLength = emptyValue(e), 0
	return Zero
}

func emptyValue(e *dicom.Element) dicom.Value {
	switch e.Value.ValueType() {
	case dicom.Ints:
		return newValue([]int{})
	case dicom.Floats:
		return newValue([]float64{})
	case dicom.Bytes:
		return newValue([]byte{})
	case dicom.Sequences:
		return newValue([][]*dicom.Element{})
	}
	return newValue([]string{""})
}

// Dummy values by VR: non-empty, valid for the VR, and meaning nothing.
var dummyText = map[string]string{
	"PN": "ANONYMIZED", "DA": "19000101", "TM": "000000", "DT": "19000101000000",
	"AS": "000D", "DS": "0", "IS": "0", "UR": "urn:none",
}

func (p *pass) dummy(e *dicom.Element) {
	vr := e.RawValueRepresentation
	switch e.Value.ValueType() {
	case dicom.Sequences:
		// One empty item: a sequence that is present and says nothing.
		e.Value = newValue([][]*dicom.Element{{}})
	case dicom.Ints:
		e.Value = newValue([]int{0})
	case dicom.Floats:
		e.Value = newValue([]float64{0})
	case dicom.Bytes:
		e.Value = newValue([]byte{0, 0})
	default:
		e.Value = newValue([]string{dummyString(vr, firstString(e), p.d)})
	}
	e.ValueLength = 0
}

func dummyString(vr, original string, d *Deidentifier) string {
	if vr == "UI" {
		return d.UID(original)
	}
	if s, ok := dummyText[vr]; ok {
		return s
	}
	return "ANONYMIZED"
}

// clean replaces a value with one of the same meaning and no identity:
// dates shifted (modified-dates option), text cleaned (descriptors and
// patient characteristics options), sequences cleaned item by item.
func (p *pass) clean(e *dicom.Element, t Tag, path string, text bool) Action {
	vr := e.RawValueRepresentation
	switch {
	case vr == "DA" || vr == "DT":
		return p.shiftDates(e)
	case e.Value.ValueType() == dicom.Sequences:
		p.sequenceItems(e, path+t.String(), true)
	case text && cleanableText(vr):
		p.cleanStrings(e, vr)
	}
	// TM and Timezone Offset stay as they are under the modified-dates
	// option: the shift is whole days.
	return Clean
}

// cleansText reports whether an enabled option cleans r's text: Clean
// Descriptors or Patient Characteristics, not the modified-dates option.
func (d *Deidentifier) cleansText(r *Rule) bool {
	return d.opts.CleanDescriptors && r.Options[optDescriptors] == Clean ||
		d.opts.RetainPatientCharacteristics && r.Options[optPatientChars] == Clean
}

func cleanableText(vr string) bool {
	switch vr {
	case "LO", "SH", "ST", "LT", "UT", "UC", "PN":
		return true
	}
	return false
}

func (p *pass) cleanStrings(e *dicom.Element, vr string) {
	vals, ok := e.Value.GetValue().([]string)
	if !ok {
		return
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		// Truncating first bounds the cleaner's work on hostile values.
		out[i] = truncateRunes(p.cleanText(truncateRunes(v, maxChars[vr])), maxChars[vr])
	}
	e.Value, e.ValueLength = newValue(out), 0
}

func (p *pass) cleanText(s string) string {
	s = p.fc.scrub.apply(s)
	if p.d.opts.CleanText != nil {
		return p.d.opts.CleanText(s)
	}
	return cleanPatterns(s)
}

// Maximum lengths in characters (PS3.5 Table 6.2-1); UT and UC have none
// in the standard, and a cleaned one is cut at 64 Ki characters.
var maxChars = map[string]int{"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "PN": 64, "UT": 65536, "UC": 65536}

func truncateRunes(s string, max int) string {
	if max == 0 || len(s) <= max {
		return s
	}
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max])
}

// shiftDates moves every value of a DA or DT element by the patient's
// shift. A value that is not a date it can read is emptied.
func (p *pass) shiftDates(e *dicom.Element) Action {
	vals, ok := e.Value.GetValue().([]string)
	if !ok {
		e.Value, e.ValueLength = emptyValue(e), 0
		return Zero
	}
	out := make([]string, len(vals))
	action := Clean
	for i, v := range vals {
		s, ok := shiftDateTime(strings.TrimSpace(v), p.fc.shiftDays)
		if !ok {
			s, action = "", Zero
		}
		out[i] = s
	}
	e.Value, e.ValueLength = newValue(out), 0
	return action
}

// shiftDateTime shifts the date part of a DA or DT value (YYYY, YYYYMM or
// YYYYMMDD, then an optional time and offset that are kept).
func shiftDateTime(v string, days int) (string, bool) {
	if v == "" {
		return "", true
	}
	if len(v) == 10 && v[4] == '.' && v[7] == '.' { // ACR-NEMA style date
		v = v[:4] + v[5:7] + v[8:]
	}
	n := 0
	for n < len(v) && n < 8 && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	layout := map[int]string{4: "2006", 6: "200601", 8: "20060102"}[n]
	if layout == "" {
		return "", false
	}
	t, err := time.Parse(layout, v[:n])
	if err != nil {
		return "", false
	}
	return t.AddDate(0, 0, days).Format(layout) + v[n:], true
}

// replaceUIDs gives every UID value its project replacement; a sequence
// marked U has the UIDs inside its items replaced.
func (p *pass) replaceUIDs(e *dicom.Element, path string) {
	if e.Value.ValueType() == dicom.Sequences {
		p.sequenceItems(e, path+tagOf(e).String(), false)
		return
	}
	vals, ok := e.Value.GetValue().([]string)
	if !ok {
		e.Value, e.ValueLength = emptyValue(e), 0
		return
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if v = strings.TrimRight(v, "\x00 "); v != "" {
			out[i] = p.d.UID(v)
		}
	}
	e.Value, e.ValueLength = newValue(out), 0
}
