package dicomdeid

import (
	"fmt"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

var (
	patientNameTag = Tag{0x0010, 0x0010}
	patientIDTag   = Tag{0x0010, 0x0020}
	sopClassTag    = Tag{0x0008, 0x0016}
)

// Enhanced multi-frame SOP classes: their Enhanced General Equipment and
// Multi-frame Functional Groups modules make some attributes Type 1 that
// are Type 3 in the classic image IODs.
var enhancedSOPClasses = map[string]bool{
	"1.2.840.10008.5.1.4.1.1.2.1":    true, // Enhanced CT
	"1.2.840.10008.5.1.4.1.1.2.2":    true, // Legacy Converted Enhanced CT
	"1.2.840.10008.5.1.4.1.1.4.1":    true, // Enhanced MR
	"1.2.840.10008.5.1.4.1.1.4.3":    true, // Enhanced MR Color
	"1.2.840.10008.5.1.4.1.1.4.4":    true, // Legacy Converted Enhanced MR
	"1.2.840.10008.5.1.4.1.1.128.1":  true, // Legacy Converted Enhanced PET
	"1.2.840.10008.5.1.4.1.1.130":    true, // Enhanced PET
	"1.2.840.10008.5.1.4.1.1.12.1.1": true, // Enhanced XA
	"1.2.840.10008.5.1.4.1.1.12.2.1": true, // Enhanced XRF
}

// Attributes that the enhanced IODs require: a combined action resolves to
// D (Type 1) or Z (Type 2) for them, and to X everywhere else, following
// "X unless Z or D is required to maintain IOD conformance".
var (
	type1InEnhanced = map[Tag]bool{
		{0x0018, 0x1000}: true, // Device Serial Number (Enhanced General Equipment)
		{0x0008, 0x0023}: true, // Content Date (Multi-frame Functional Groups)
		{0x0008, 0x0033}: true, // Content Time
		{0x0008, 0x002A}: true, // Acquisition DateTime (Enhanced CT/MR Image)
	}
	type2InEnhanced = map[Tag]bool{
		{0x0040, 0x0555}: true, // Acquisition Context Sequence
	}
)

// resolve picks the one action for an attribute under the enabled options:
// an option that keeps wins over one that cleans, which wins over Basic.
func (d *Deidentifier) resolve(r *Rule, t Tag, enhanced bool) Action {
	var clean bool
	for _, opt := range d.enabled {
		switch r.Options[opt] {
		case Keep:
			return Keep
		case Clean:
			clean = true
		}
	}
	if clean {
		return Clean
	}
	return resolveBasic(r.Basic, t, enhanced)
}

func resolveBasic(basic string, t Tag, enhanced bool) Action {
	switch basic {
	case "X/Z":
		if enhanced && type2InEnhanced[t] {
			return Zero
		}
		return Remove
	case "X/D", "X/Z/D":
		if enhanced && type1InEnhanced[t] {
			return Dummy
		}
		return Remove
	case "Z/D":
		if enhanced && type1InEnhanced[t] {
			return Dummy
		}
		return Zero
	case "X/Z/U*":
		// Keeping the reference with its UIDs replaced keeps the links
		// between images, which a dataset needs, and carries no identity.
		return Replace
	}
	return Action(basic)
}

// pass de-identifies one file.
type pass struct {
	d   *Deidentifier
	fc  *fileContext
	rep *Report
}

func (d *Deidentifier) apply(ds *dicom.Dataset, g guardResult) Report {
	fc := d.context(ds.Elements, g.meta)
	p := &pass{d: d, fc: fc, rep: &Report{Pseudonym: fc.pseudonym}}
	for _, t := range g.dropped {
		p.record("", t, nil, Remove, "unparseable undefined-length element")
	}
	body := make([]*dicom.Element, 0, len(ds.Elements))
	for _, e := range ds.Elements {
		if e.Tag.Group != 2 && !isMethodTag(tagOf(e)) {
			body = append(body, e)
		}
	}
	body = p.elements(body, "", false)
	body = append(body, p.methodElements()...)
	p.rep.fillUIDs(body)
	all := append(p.meta(g.meta, body), body...)
	sortElements(all)
	ds.Elements = all
	p.rep.BurnedInAccepted = burnedIn(*ds)
	return *p.rep
}

func tagOf(e *dicom.Element) Tag { return Tag{e.Tag.Group, e.Tag.Element} }

// elements applies the profile to one list of elements: the data set or
// one sequence item. inClean is set inside a sequence being cleaned.
func (p *pass) elements(list []*dicom.Element, path string, inClean bool) []*dicom.Element {
	creators := p.privateCreators(list)
	out := list[:0:0]
	for _, e := range list {
		if kept := p.element(e, path, inClean, creators); kept != nil {
			out = append(out, kept)
		}
	}
	return out
}

func (p *pass) element(e *dicom.Element, path string, inClean bool, creators map[Tag]string) *dicom.Element {
	t := tagOf(e)
	switch {
	case t.Private():
		return p.private(e, t, path, creators)
	case t.Element == 0:
		p.record(path, t, nil, Remove, "Group Length")
		return nil
	case t == charsetTag:
		return p.charset(e)
	}
	r := p.d.rules.lookup(t)
	if r == nil {
		return p.untabled(e, t, path, inClean)
	}
	return p.act(e, t, r, p.d.resolve(r, t, p.fc.enhanced), path)
}

func (p *pass) act(e *dicom.Element, t Tag, r *Rule, a Action, path string) *dicom.Element {
	if a == Remove {
		p.record(path, t, r, Remove, "")
		return nil
	}
	// Record first so a sequence comes before what changed inside it; the
	// action is filled in once known.
	i := len(p.rep.Changes)
	p.record(path, t, r, a, "")
	switch a {
	case Zero:
		a = p.zero(e, t)
	case Dummy:
		p.dummy(e)
	case Keep:
		p.sequenceItems(e, path+t.String(), false)
	case Clean:
		a = p.clean(e, t, path, p.d.cleansText(r))
	case Replace:
		p.replaceUIDs(e, path)
	}
	p.rep.Changes[i].Action = a
	return e
}

// untabled handles attributes the table does not list: kept, except dates
// (medsec's rule beyond the table: a date not listed is still a date of the
// patient's care, so it is removed, or shifted with the modified-dates
// option) and free text inside a sequence being cleaned.
func (p *pass) untabled(e *dicom.Element, t Tag, path string, inClean bool) *dicom.Element {
	vr := e.RawValueRepresentation
	switch {
	case vr == "DA" || vr == "DT":
		if !p.d.opts.RetainLongitudinalModifiedDates {
			p.record(path, t, nil, Remove, "date not in Table E.1-1")
			return nil
		}
		p.record(path, t, nil, p.shiftDates(e), "date not in Table E.1-1")
	case vr == "SQ":
		p.sequenceItems(e, path+t.String(), inClean)
	case inClean && cleanableText(vr) && !codedTags[t]:
		p.cleanStrings(e, vr)
		p.record(path, t, nil, Clean, "text in a cleaned sequence")
	default:
		p.rep.Untouched++
	}
	return e
}

// Coded entries keep their codes; only Code Meaning is text.
var codedTags = map[Tag]bool{
	{0x0008, 0x0100}: true, {0x0008, 0x0102}: true, {0x0008, 0x0103}: true,
	{0x0008, 0x0119}: true, {0x0008, 0x0120}: true,
}

// sequenceItems applies the profile inside every item of a sequence, as
// PS3.15 E.1.1 requires for attributes "embedded in an Item of a
// Sequence".
func (p *pass) sequenceItems(e *dicom.Element, path string, inClean bool) {
	items, ok := e.Value.GetValue().([]*dicom.SequenceItemValue)
	if !ok {
		return
	}
	out := make([][]*dicom.Element, len(items))
	for i, it := range items {
		elems, _ := it.GetValue().([]*dicom.Element)
		out[i] = p.elements(elems, fmt.Sprintf("%s[%d].", path, i), inClean)
	}
	e.Value = newValue(out)
}

// private removes a private attribute unless SafePrivate lists it.
func (p *pass) private(e *dicom.Element, t Tag, path string, creators map[Tag]string) *dicom.Element {
	if p.safePrivate(t, creators) {
		p.record(path, t, nil, Keep, "safe private attribute")
		return e
	}
	p.record(path, t, nil, Remove, "private attribute")
	return nil
}

func (p *pass) privateCreators(list []*dicom.Element) map[Tag]string {
	if len(p.d.opts.SafePrivate) == 0 {
		return nil
	}
	creators := map[Tag]string{}
	for _, e := range list {
		t := tagOf(e)
		if t.Private() && t.Element >= 0x10 && t.Element <= 0xFF {
			creators[t] = strings.TrimSpace(firstString(e))
		}
	}
	return creators
}

// safePrivate keeps a listed attribute and the creator element of a block
// holding one.
func (p *pass) safePrivate(t Tag, creators map[Tag]string) bool {
	for _, sp := range p.d.opts.SafePrivate {
		if sp.Group != t.Group {
			continue
		}
		if t.Element <= 0xFF && creators[t] == sp.Creator {
			return true
		}
		block := Tag{t.Group, t.Element >> 8}
		if t.Element > 0xFF && uint8(t.Element) == sp.Element && creators[block] == sp.Creator {
			return true
		}
	}
	return false
}

// charset rewrites Specific Character Set to UTF-8: the library decodes
// every string to UTF-8 as it reads, so that is what gets written.
func (p *pass) charset(e *dicom.Element) *dicom.Element {
	if v := firstString(e); v != "" && v != "ISO_IR 192" {
		e.Value, e.ValueLength = newValue([]string{"ISO_IR 192"}), 0
	}
	p.rep.Untouched++
	return e
}

func (p *pass) record(path string, t Tag, r *Rule, a Action, why string) {
	c := Change{Path: path + t.String(), Tag: t, Action: a, Name: why}
	if r != nil {
		c.Name, c.Rule = r.Name, r.Basic
	} else if info, err := tag.Find(tag.Tag{Group: t.Group, Element: t.Element}); err == nil && why != "" {
		c.Name = info.Name + " (" + why + ")"
	}
	p.rep.Changes = append(p.rep.Changes, c)
}

func isMethodTag(t Tag) bool {
	return t == Tag{0x0012, 0x0062} || t == Tag{0x0012, 0x0063} || t == Tag{0x0012, 0x0064} || t == Tag{0x0028, 0x0303}
}

func sortElements(elems []*dicom.Element) {
	// insertion sort: the list is sorted but for a handful of appended
	// elements, and the library's Tag.Compare orders by group then element
	for i := 1; i < len(elems); i++ {
		for j := i; j > 0 && elems[j].Tag.Compare(elems[j-1].Tag) < 0; j-- {
			elems[j], elems[j-1] = elems[j-1], elems[j]
		}
	}
}

func firstString(e *dicom.Element) string {
	if e == nil || e.Value == nil || e.Value.ValueType() != dicom.Strings {
		return ""
	}
	v, _ := e.Value.GetValue().([]string)
	if len(v) == 0 {
		return ""
	}
	return strings.TrimSpace(v[0])
}

// newValue wraps one of the value types the library accepts ([]string,
// []int, []float64, []byte, [][]*dicom.Element); for those NewValue cannot
// fail.
func newValue(x any) dicom.Value {
	v, _ := dicom.NewValue(x)
	return v
}
