package dicomdeid

import "github.com/suyashkumar/dicom"

// Report says what de-identification did to one file. It holds tags,
// actions and new identifiers, never an original value, so it can go into
// the audit log as it is.
type Report struct {
	// The new identifiers of the file.
	SOPInstanceUID    string
	SeriesInstanceUID string
	StudyInstanceUID  string
	Pseudonym         string
	// Changes lists every attribute the profile acted on, in the order met.
	Changes []Change
	// Untouched counts attributes outside the table that were kept as
	// they are (pixel data, image geometry, acquisition parameters).
	Untouched int
	// BurnedInAccepted is set when the image has burned-in annotation and
	// Options.AcceptBurnedIn let it through with its pixels unchanged.
	BurnedInAccepted bool
}

// Change is what happened to one attribute.
type Change struct {
	// Path locates the attribute: "(0010,0010)" at the top level,
	// "(0040,0275)[0].(0040,1001)" inside the first item of a sequence.
	Path   string
	Tag    Tag
	Name   string
	Rule   string // the Basic Profile action in Table E.1-1; empty for rules beyond it
	Action Action // the action applied
}

// Removed lists the attributes removed (X).
func (r Report) Removed() []Change { return r.filter(func(a Action) bool { return a == Remove }) }

// Replaced lists the attributes emptied, given dummy values, cleaned or
// given new UIDs (Z, D, C, U).
func (r Report) Replaced() []Change {
	return r.filter(func(a Action) bool { return a != Remove && a != Keep })
}

// Kept lists attributes of the table kept because an option retains them.
func (r Report) Kept() []Change { return r.filter(func(a Action) bool { return a == Keep }) }

func (r Report) filter(keep func(Action) bool) []Change {
	var out []Change
	for _, c := range r.Changes {
		if keep(c.Action) {
			out = append(out, c)
		}
	}
	return out
}

func (r *Report) fillUIDs(elems []*dicom.Element) {
	for _, e := range elems {
		switch tagOf(e) {
		case Tag{0x0008, 0x0018}:
			r.SOPInstanceUID = firstString(e)
		case Tag{0x0020, 0x000E}:
			r.SeriesInstanceUID = firstString(e)
		case Tag{0x0020, 0x000D}:
			r.StudyInstanceUID = firstString(e)
		}
	}
}
