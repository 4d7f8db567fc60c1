package dicomdeid

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"
	"github.com/suyashkumar/dicom/pkg/uid"
)

// The guard walks a file's element structure before suyashkumar/dicom
// v1.0.7 parses it, because that parser trusts declared lengths: it
// allocates a buffer of the declared length before reading (a 4 GiB
// allocation from an 8-byte header), recurses once per nesting level with
// no limit (a Go stack overflow is fatal, not a panic), and type-asserts
// its way through sequences (a panic on a non-item inside a defined-length
// sequence). The guard accepts only what the parser reads safely, so the
// memory the parse can use is bounded by the file's size.

const (
	undefinedLength = 0xFFFFFFFF
	deflatedTS      = "1.2.840.10008.1.2.1.99"
	bigEndianTS     = "1.2.840.10008.1.2.2"
)

var (
	itemTag      = Tag{0xFFFE, 0xE000}
	itemDelimTag = Tag{0xFFFE, 0xE00D}
	seqDelimTag  = Tag{0xFFFE, 0xE0DD}
	pixelDataTag = Tag{0x7FE0, 0x0010}
	charsetTag   = Tag{0x0008, 0x0005}
)

// VRs whose explicit header has a 32-bit length, as the parser reads them.
var longVRs = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OW": true, "SQ": true, "UN": true, "UC": true, "UR": true, "UT": true}

// VRs the parser handles; OV, SV and UV have 32-bit lengths in the standard
// but the parser reads them with 16-bit ones, so they are refused.
var knownVRs = map[string]bool{
	"AE": true, "AS": true, "AT": true, "CS": true, "DA": true, "DS": true, "DT": true, "FL": true,
	"FD": true, "IS": true, "LO": true, "LT": true, "OB": true, "OD": true, "OF": true, "OL": true,
	"OW": true, "PN": true, "SH": true, "SL": true, "SQ": true, "SS": true, "ST": true, "TM": true,
	"UC": true, "UI": true, "UL": true, "UN": true, "UR": true, "US": true, "UT": true,
}

type limits struct {
	maxDepth    int
	maxElements int
}

type span struct{ start, end int }

// walker checks one file held in memory.
type walker struct {
	data     []byte
	pos      int
	implicit bool
	lim      limits
	depth    int
	elements int
	// definedAncestors counts enclosing containers with a defined length;
	// an element can be cut out of the file only where it is zero.
	definedAncestors int
	drops            []span
	dropped          []Tag
}

// fileMeta is what the guard learned from the file meta information.
type fileMeta struct {
	transferSyntax string
	sopClass       string
	sopInstance    string
	badTS          bool // (0002,0010) present with a VR other than UI
}

// guardResult is the file the parser may read, with any element the parser
// cannot handle cut out, and the tags of those elements.
type guardResult struct {
	data    []byte
	meta    fileMeta
	dropped []Tag
}

func guard(data []byte, lim limits) (guardResult, error) {
	if len(data) < 132 || string(data[128:132]) != "DICM" {
		return guardResult{}, ErrNotDICOM
	}
	w := &walker{data: data, pos: 132, lim: lim}
	meta, err := w.fileMeta()
	if err != nil {
		return guardResult{}, err
	}
	if err := w.dataset(); err != nil {
		return guardResult{}, err
	}
	return guardResult{data: w.cut(), meta: meta, dropped: w.dropped}, nil
}

func (w *walker) le16(at int) uint16 { return binary.LittleEndian.Uint16(w.data[at:]) }
func (w *walker) le32(at int) uint32 { return binary.LittleEndian.Uint32(w.data[at:]) }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// fileMeta reads group 0002, always explicit VR little endian, and checks
// the transfer syntax is one the parser and writer handle.
func (w *walker) fileMeta() (fileMeta, error) {
	if len(w.data)-w.pos < 12 || w.le16(w.pos) != 2 || w.le16(w.pos+2) != 0 ||
		string(w.data[w.pos+4:w.pos+6]) != "UL" || w.le16(w.pos+6) != 4 {
		return fileMeta{}, malformed("file meta information group length (0002,0000) missing")
	}
	end := w.pos + 12 + int(w.le32(w.pos+8))
	if end > len(w.data) || end < w.pos {
		return fileMeta{}, malformed("file meta information longer than the file")
	}
	w.pos += 12
	var meta fileMeta
	for w.pos < end {
		h, err := w.header(end)
		if err != nil {
			return fileMeta{}, err
		}
		if h.tag.Group != 2 || h.vl == undefinedLength || h.valueEnd() > end {
			return fileMeta{}, malformed("bad element %s in file meta information", h.tag)
		}
		w.metaValue(h, &meta)
		w.pos = h.valueEnd()
	}
	if meta.badTS {
		return fileMeta{}, malformed("transfer syntax (0002,0010) is not a UID")
	}
	return meta, w.checkTransferSyntax(meta.transferSyntax)
}

func (w *walker) metaValue(h header, meta *fileMeta) {
	v := strings.TrimRight(string(w.data[h.valueStart:h.valueEnd()]), "\x00 ")
	switch h.tag {
	case Tag{2, 0x10}:
		meta.transferSyntax = v
		if h.vr != "UI" || meta.transferSyntax == "" {
			meta.badTS = true
		}
	case Tag{2, 0x02}:
		meta.sopClass = v
	case Tag{2, 0x03}:
		meta.sopInstance = v
	}
}

func (w *walker) checkTransferSyntax(ts string) error {
	if ts == "" {
		return malformed("no transfer syntax (0002,0010) in file meta information")
	}
	if ts == deflatedTS || ts == bigEndianTS {
		return fmt.Errorf("%w: transfer syntax %s", ErrUnsupported, ts)
	}
	_, implicit, err := uid.ParseTransferSyntaxUID(ts)
	if err != nil {
		return fmt.Errorf("%w: unknown transfer syntax", ErrUnsupported)
	}
	w.implicit = implicit
	return nil
}

// header is one element header as the parser will read it.
type header struct {
	tag        Tag
	vr         string
	vl         uint32
	valueStart int
}

func (h header) valueEnd() int { return h.valueStart + int(h.vl) }

// header reads the element header at w.pos; limit is where the enclosing
// container (or the file) ends.
func (w *walker) header(limit int) (header, error) {
	if limit-w.pos < 8 {
		return header{}, malformed("truncated element header at byte %d", w.pos)
	}
	t := Tag{w.le16(w.pos), w.le16(w.pos + 2)}
	if t.Group == 0xFFFE {
		return w.delimiterHeader(t)
	}
	// implicit is unset while fileMeta reads group 0002, which is always
	// explicit.
	if w.implicit {
		return header{tag: t, vr: dictionaryVR(t), vl: w.le32(w.pos + 4), valueStart: w.pos + 8}, nil
	}
	return w.explicitHeader(t, limit)
}

// delimiterHeader reads item and delimiter headers, which are implicit in
// every transfer syntax. Delimiters must carry a zero length: in explicit
// syntaxes the parser reads their last four bytes as a VR and a length.
func (w *walker) delimiterHeader(t Tag) (header, error) {
	vl := w.le32(w.pos + 4)
	if t != itemTag && (t != itemDelimTag && t != seqDelimTag || vl != 0) {
		return header{}, malformed("bad item or delimiter %s", t)
	}
	return header{tag: t, vr: "NA", vl: vl, valueStart: w.pos + 8}, nil
}

func (w *walker) explicitHeader(t Tag, limit int) (header, error) {
	vr := string(w.data[w.pos+4 : w.pos+6])
	if !knownVRs[vr] {
		if vr == "OV" || vr == "SV" || vr == "UV" {
			return header{}, fmt.Errorf("%w: VR %s of %s", ErrUnsupported, vr, t)
		}
		return header{}, malformed("unknown VR of %s at byte %d", t, w.pos)
	}
	if !longVRs[vr] {
		vl := uint32(w.le16(w.pos + 6))
		if vl == 0xFFFF { // the parser reads this as an undefined length
			return header{}, malformed("length FFFFH on %s", t)
		}
		return header{tag: t, vr: vr, vl: vl, valueStart: w.pos + 8}, nil
	}
	if limit-w.pos < 12 {
		return header{}, malformed("truncated element header at byte %d", w.pos)
	}
	return header{tag: t, vr: vr, vl: w.le32(w.pos + 8), valueStart: w.pos + 12}, nil
}

func dictionaryVR(t Tag) string {
	info, err := tag.Find(tag.Tag{Group: t.Group, Element: t.Element})
	if err != nil {
		return "UN"
	}
	return info.VR
}

// dataset walks the top-level data set to the end of the file.
func (w *walker) dataset() error {
	for w.pos < len(w.data) {
		h, err := w.header(len(w.data))
		if err != nil {
			return err
		}
		if h.tag.Group == 0xFFFE {
			return malformed("item or delimiter %s outside a sequence", h.tag)
		}
		if err := w.element(h, len(w.data)); err != nil {
			return err
		}
	}
	return nil
}

// element checks one element's value and moves past it.
func (w *walker) element(h header, limit int) error {
	w.elements++
	if w.elements > w.lim.maxElements {
		return fmt.Errorf("%w: more than %d elements", ErrLimit, w.lim.maxElements)
	}
	if err := checkCharset(h); err != nil {
		return err
	}
	switch {
	case h.tag == pixelDataTag:
		return w.pixelData(h, limit)
	case h.vr == "SQ":
		return w.sequence(h, limit)
	case h.vl == undefinedLength:
		return w.dropUndefined(h, limit)
	}
	if h.valueEnd() > limit {
		return malformed("value of %s runs past its container (length %d)", h.tag, h.vl)
	}
	if err := checkValue(h); err != nil {
		return err
	}
	w.pos = h.valueEnd()
	return nil
}

// Sizes of the binary VRs the parser reads value by value.
var binarySize = map[string]uint32{"OW": 2, "US": 2, "SS": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8}

// checkValue refuses values the parser would reject half-way through.
func checkValue(h header) error {
	if size := binarySize[h.vr]; size > 0 && h.vl%size != 0 {
		return malformed("length %d of %s is not a multiple of %d", h.vl, h.tag, size)
	}
	return nil
}

// checkCharset refuses a Specific Character Set the parser cannot read as
// text: it asserts the value is a string list and panics otherwise.
func checkCharset(h header) error {
	if h.tag != charsetTag {
		return nil
	}
	kind := tag.GetVRKind(tag.Tag{Group: h.tag.Group, Element: h.tag.Element}, h.vr)
	if kind != tag.VRStringList && kind != tag.VRString || h.vl == undefinedLength {
		return malformed("specific character set with VR %s", h.vr)
	}
	return nil
}

func (w *walker) enter() error {
	w.depth++
	if w.depth > w.lim.maxDepth {
		return fmt.Errorf("%w: sequences nested deeper than %d", ErrLimit, w.lim.maxDepth)
	}
	return nil
}

func (w *walker) sequence(h header, limit int) error {
	if err := w.enter(); err != nil {
		return err
	}
	defer func() { w.depth-- }()
	w.pos = h.valueStart
	if h.vl == undefinedLength {
		return w.undefinedSequence(limit)
	}
	end := h.valueEnd()
	if end > limit {
		return malformed("sequence %s runs past its container", h.tag)
	}
	w.definedAncestors++
	defer func() { w.definedAncestors-- }()
	for w.pos < end {
		it, err := w.header(end)
		if err != nil {
			return err
		}
		if it.tag != itemTag {
			return malformed("%s inside defined-length sequence %s", it.tag, h.tag)
		}
		if err := w.item(it, end); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) undefinedSequence(limit int) error {
	for {
		it, err := w.header(limit)
		if err != nil {
			return err
		}
		switch it.tag {
		case seqDelimTag:
			w.pos = it.valueStart
			return nil
		case itemTag:
			if err := w.item(it, limit); err != nil {
				return err
			}
		default:
			return malformed("%s where a sequence item was expected", it.tag)
		}
	}
}

func (w *walker) item(it header, limit int) error {
	w.pos = it.valueStart
	if it.vl != undefinedLength {
		end := it.valueEnd()
		if end > limit {
			return malformed("sequence item runs past its sequence")
		}
		w.definedAncestors++
		defer func() { w.definedAncestors-- }()
		return w.elementsUntil(end)
	}
	for {
		h, err := w.header(limit)
		if err != nil {
			return err
		}
		if h.tag == itemDelimTag {
			w.pos = h.valueStart
			return nil
		}
		if h.tag.Group == 0xFFFE {
			return malformed("%s inside a sequence item", h.tag)
		}
		if err := w.element(h, limit); err != nil {
			return err
		}
	}
}

func (w *walker) elementsUntil(end int) error {
	for w.pos < end {
		h, err := w.header(end)
		if err != nil {
			return err
		}
		if h.tag.Group == 0xFFFE {
			return malformed("%s inside a sequence item", h.tag)
		}
		if err := w.element(h, end); err != nil {
			return err
		}
	}
	return nil
}

// pixelData checks native pixel data (one defined-length value, even) or
// encapsulated pixel data (fragments as defined-length items).
func (w *walker) pixelData(h header, limit int) error {
	if h.vl != undefinedLength {
		if h.valueEnd() > limit || h.vl%2 != 0 {
			return malformed("pixel data length %d is odd or past the end", h.vl)
		}
		w.pos = h.valueEnd()
		return nil
	}
	w.pos = h.valueStart
	for {
		it, err := w.header(limit)
		if err != nil {
			return err
		}
		if it.tag == seqDelimTag {
			w.pos = it.valueStart
			return nil
		}
		if it.tag != itemTag || it.vl == undefinedLength || it.valueEnd() > limit {
			return malformed("bad fragment in encapsulated pixel data")
		}
		w.pos = it.valueEnd()
	}
}

// dropUndefined handles an undefined-length element that is neither a
// sequence nor pixel data: in practice a private sequence the dictionary
// does not know (VR UN), common in implicit VR files. The parser would
// allocate 4 GiB for it, so the guard cuts it out of the file, which is safe
// only where no enclosing container has a defined length.
func (w *walker) dropUndefined(h header, limit int) error {
	if w.definedAncestors > 0 {
		return fmt.Errorf("%w: undefined-length %s %s inside a defined-length item", ErrUnsupported, h.vr, h.tag)
	}
	start := w.pos
	w.pos = h.valueStart
	if err := w.skipImplicitSequence(limit); err != nil {
		return err
	}
	w.drops = append(w.drops, span{start, w.pos})
	w.dropped = append(w.dropped, h.tag)
	return nil
}

// skipImplicitSequence moves past items up to the sequence delimiter,
// reading them as implicit VR little endian (PS3.5 6.2.2 for UN).
func (w *walker) skipImplicitSequence(limit int) error {
	if err := w.enter(); err != nil {
		return err
	}
	defer func() { w.depth-- }()
	for {
		if limit-w.pos < 8 {
			return malformed("truncated sequence of unknown VR")
		}
		t, vl := Tag{w.le16(w.pos), w.le16(w.pos + 2)}, w.le32(w.pos+4)
		w.pos += 8
		switch {
		case t == seqDelimTag:
			return nil
		case t != itemTag:
			return malformed("%s where a sequence item was expected", t)
		case vl == undefinedLength:
			if err := w.skipImplicitItem(limit); err != nil {
				return err
			}
		case w.pos+int(vl) > limit:
			return malformed("sequence item runs past the file")
		default:
			w.pos += int(vl)
		}
	}
}

func (w *walker) skipImplicitItem(limit int) error {
	for {
		if limit-w.pos < 8 {
			return malformed("truncated item of unknown VR")
		}
		t, vl := Tag{w.le16(w.pos), w.le16(w.pos + 2)}, w.le32(w.pos+4)
		w.pos += 8
		if w.elements++; w.elements > w.lim.maxElements {
			return fmt.Errorf("%w: more than %d elements", ErrLimit, w.lim.maxElements)
		}
		switch {
		case t == itemDelimTag:
			return nil
		case vl == undefinedLength:
			if err := w.skipImplicitSequence(limit); err != nil {
				return err
			}
		case w.pos+int(vl) > limit:
			return malformed("element runs past the file")
		default:
			w.pos += int(vl)
		}
	}
}

// cut returns the file without the dropped spans.
func (w *walker) cut() []byte {
	if len(w.drops) == 0 {
		return w.data
	}
	out := make([]byte, 0, len(w.data))
	last := 0
	for _, s := range w.drops {
		out = append(out, w.data[last:s.start]...)
		last = s.end
	}
	return append(out, w.data[last:]...)
}
