package dicomdeid

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestTableLoads(t *testing.T) {
	rules, err := Rules()
	if err != nil {
		t.Fatalf("Rules: %v", err)
	}
	if len(rules) < 450 {
		t.Errorf("got %d rules, want the whole of Table E.1-1 (over 450)", len(rules))
	}
	for _, r := range rules {
		if r.Name == "" {
			t.Errorf("rule %s has no name", r.Tag)
		}
		for opt, a := range r.Options {
			if a != Keep && a != Clean && a != Remove {
				t.Errorf("rule %s option %s: got action %q, want K, C or X", r.Tag, opt, a)
			}
		}
	}
}

func TestParseTableRejectsBadLines(t *testing.T) {
	for _, line := range []string{
		"0010,0010 Z - ",                    // no name
		"0010,001 Z - Patient's Name",       // short tag
		"0010,0010 Q - Patient's Name",      // unknown action
		"0010,0010 Z lmd=Q Patient's Name",  // unknown option action
		"0010,0010 Z nope=K Patient's Name", // unknown option
		"0010,0010 Z - A\n0010,0010 Z - B",  // duplicate
	} {
		if _, err := parseTable(line); err == nil {
			t.Errorf("parseTable(%q): got no error", line)
		}
	}
}

// probe is one attribute of the table written into a test file.
type probe struct {
	rule Rule
	tag  tag.Tag
	vr   string
	orig []string // original strings, for string VRs
}

const probePatientID = "PID-1234567"

// probeFile writes one element for every rule of the table (wildcard rules
// through a concrete tag), each with a value typical of its VR, and every
// sequence with an item holding a UID and an attribute the profile removes.
func probeFile(t *testing.T) ([]byte, []probe) {
	t.Helper()
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	elems := []*dicom.Element{
		mustElem(t, tag.MediaStorageSOPClassUID, []string{dicomtest.CTImageStorage}),
		mustElem(t, tag.MediaStorageSOPInstanceUID, []string{"1.2.3.4.5"}),
		mustElem(t, tag.TransferSyntaxUID, []string{dicomtest.ExplicitVRLittleEndian}),
		mustElem(t, tag.SpecificCharacterSet, []string{"ISO_IR 192"}),
		mustElem(t, tag.SOPClassUID, []string{dicomtest.CTImageStorage}),
	}
	var probes []probe
	for _, r := range rules {
		if r.Tag.Group == 0x0002 {
			continue // file meta information is rebuilt; see TestFileMeta
		}
		p := newProbe(r)
		e, err := dicomtest.Private(p.tag, p.vr, probeValue(p))
		if err != nil {
			t.Fatalf("probe %s: %v", p.tag, err)
		}
		p.orig = strs(e)
		elems = append(elems, e)
		probes = append(probes, p)
	}
	data, err := dicomtest.Encode(elems, nil)
	if err != nil {
		t.Fatalf("encode probe file: %v", err)
	}
	return data, probes
}

func mustElem(t *testing.T, tg tag.Tag, v any) *dicom.Element {
	t.Helper()
	e, err := dicom.NewElement(tg, v)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newProbe(r Rule) probe {
	tg := tag.Tag{Group: r.Tag.Group, Element: r.Tag.Element}
	if r.Mask.Group != 0xFFFF { // 50xx / 60xx repeating groups
		tg.Group = r.Tag.Group | 0x0002
	}
	if r.Mask.Element != 0xFFFF {
		tg.Element = 0x3000
	}
	return probe{rule: r, tag: tg, vr: probeVR(tg, r.Name)}
}

// probeVR takes the dictionary's VR, or guesses from the name for tags the
// library's dictionary does not know.
func probeVR(tg tag.Tag, name string) string {
	if info, err := tag.Find(tg); err == nil {
		return info.VR
	}
	switch {
	case strings.HasSuffix(name, "UID"):
		return "UI"
	case strings.HasSuffix(name, "DateTime") || strings.HasSuffix(name, "Timestamp"):
		return "DT"
	case strings.HasSuffix(name, "Date") || strings.HasSuffix(name, "Date Stamp"):
		return "DA"
	case strings.HasSuffix(name, "Time"):
		return "TM"
	case strings.HasSuffix(name, "Sequence"):
		return "SQ"
	case strings.Contains(name, "Data"):
		return "OB"
	}
	return "LO"
}

func probeValue(p probe) any {
	switch p.vr {
	case "UI":
		return []string{fmt.Sprintf("1.2.840.99.%d.%d", p.tag.Group, p.tag.Element)}
	case "DA":
		return []string{"20200315"}
	case "DT":
		return []string{"20200315101010.5"}
	case "TM":
		return []string{"101010"}
	case "PN":
		return []string{"Doe^John"}
	case "AS":
		return []string{"045Y"}
	case "DS", "IS":
		return []string{"7"}
	case "CS":
		return []string{"VALUE"}
	case "US", "SS", "UL", "SL":
		return []int{7}
	case "AT":
		return []int{0x0010, 0x0010}
	case "FL", "FD":
		return []float64{1.5}
	case "OB", "OW", "UN":
		return []byte{1, 2}
	case "SQ":
		uid, _ := dicomtest.Private(tag.ReferencedSOPInstanceUID, "UI", []string{"1.2.840.99.1155"})
		other, _ := dicomtest.Private(tag.OtherPatientIDs, "LO", []string{"NESTED-OTHER-ID"})
		return [][]*dicom.Element{{uid, other}}
	}
	if p.tag == tag.PatientID {
		return []string{probePatientID}
	}
	return []string{"note on Doe John 1234567"}
}

// expected is the test's own reading of PS3.15 E.1.1 for a classic (not
// enhanced) image: an enabled option that keeps wins, then one that
// cleans, then the Basic Profile with combined actions read as "X unless
// required" (X/Z/U* keeps references with new UIDs).
func expected(r Rule, o Options) Action {
	on := map[string]bool{"lmd": o.RetainLongitudinalModifiedDates, "pc": o.RetainPatientCharacteristics,
		"desc": o.CleanDescriptors, "dev": o.RetainDeviceIdentity}
	var keep, clean bool
	for opt, a := range r.Options {
		keep = keep || on[opt] && a == Keep
		clean = clean || on[opt] && a == Clean
	}
	switch {
	case keep:
		return Keep
	case clean:
		return Clean
	}
	switch r.Basic {
	case "X/Z", "X/D", "X/Z/D":
		return Remove
	case "Z/D":
		return Zero
	case "X/Z/U*":
		return Replace
	}
	return Action(r.Basic)
}

// TestEveryRuleApplied writes every attribute of Table E.1-1 into one file,
// de-identifies it under each option set, and checks in the output — not in
// the report — that each attribute got its action.
func TestEveryRuleApplied(t *testing.T) {
	data, probes := probeFile(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"basic", Options{}},
		{"modified dates", Options{RetainLongitudinalModifiedDates: true}},
		{"patient characteristics", Options{RetainPatientCharacteristics: true}},
		{"clean descriptors", Options{CleanDescriptors: true}},
		{"device identity", Options{RetainDeviceIdentity: true}},
		{"all options", Options{RetainLongitudinalModifiedDates: true, RetainPatientCharacteristics: true,
			CleanDescriptors: true, RetainDeviceIdentity: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeid(t, tc.opts)
			_, ds, _ := run(t, d, data)
			shift := d.DateShiftDays(probePatientID)
			for _, p := range probes {
				want := expected(p.rule, tc.opts)
				if err := checkAction(d, ds, p, want, shift, textCleaned(p.rule, tc.opts)); err != nil {
					t.Errorf("%s %s (%s, %s): want %s: %v", p.tag, p.rule.Name, p.vr, p.rule.Basic, want, err)
				}
			}
		})
	}
}

var uidForm = regexp.MustCompile(`^2\.25\.(0|[1-9][0-9]{0,38})$`)

// textCleaned: C cleans text when Clean Descriptors or Patient
// Characteristics asks for it; a C of the modified-dates option on text
// (Timezone Offset From UTC) keeps it.
func textCleaned(r Rule, o Options) bool {
	return o.CleanDescriptors && r.Options["desc"] == Clean || o.RetainPatientCharacteristics && r.Options["pc"] == Clean
}

func checkAction(d *Deidentifier, ds dicom.Dataset, p probe, want Action, shift int, cleanText bool) error {
	e := find(ds, p.tag)
	if want == Remove {
		if e != nil {
			return fmt.Errorf("still present")
		}
		return nil
	}
	if e == nil {
		return fmt.Errorf("removed")
	}
	if e.Value.ValueType() == dicom.Sequences {
		return checkSequence(e, want)
	}
	switch want {
	case Zero:
		return checkZero(d, e, p)
	case Dummy:
		return checkDummy(e, p)
	case Keep:
		if got := strs(e); p.orig != nil && strings.Join(got, `\`) != strings.Join(p.orig, `\`) {
			return fmt.Errorf("got %q, want it kept as %q", got, p.orig)
		}
	case Replace:
		for _, v := range strs(e) {
			if !uidForm.MatchString(v) || v == p.orig[0] {
				return fmt.Errorf("got %q, want a new 2.25 UID", v)
			}
		}
	case Clean:
		return checkClean(e, p, shift, cleanText)
	}
	return nil
}

func checkZero(d *Deidentifier, e *dicom.Element, p probe) error {
	if p.tag == tag.PatientName || p.tag == tag.PatientID {
		if got, want := str(e), d.Pseudonym(probePatientID); got != want {
			return fmt.Errorf("got %q, want the pseudonym %q", got, want)
		}
		return nil
	}
	switch v := e.Value.GetValue().(type) {
	case []string:
		if strings.Join(v, "") != "" {
			return fmt.Errorf("got %q, want empty", v)
		}
	case []int:
		if len(v) != 0 {
			return fmt.Errorf("got %v, want empty", v)
		}
	case []byte:
		if len(v) != 0 {
			return fmt.Errorf("got %v, want empty", v)
		}
	}
	return nil
}

func checkDummy(e *dicom.Element, p probe) error {
	v := strs(e)
	if e.Value.ValueType() != dicom.Strings {
		return nil // numbers and bytes: any present value is a dummy here
	}
	if strings.Join(v, "") == "" || strings.Join(v, `\`) == strings.Join(p.orig, `\`) {
		return fmt.Errorf("got %q, want a non-empty dummy", v)
	}
	return nil
}

// checkSequence: D leaves one empty item; Z no items; K, C and U keep the
// items with the profile applied inside (the nested Other Patient IDs
// removed, the nested UID replaced).
func checkSequence(e *dicom.Element, want Action) error {
	its := items(e)
	switch want {
	case Dummy:
		if len(its) != 1 || len(its[0]) != 0 {
			return fmt.Errorf("got %d items, want one empty item", len(its))
		}
		return nil
	case Zero:
		if len(its) != 0 {
			return fmt.Errorf("got %d items, want none", len(its))
		}
		return nil
	}
	if len(its) != 1 || len(its[0]) != 1 {
		return fmt.Errorf("got items %v, want one item holding only the replaced UID", its)
	}
	if uid := str(its[0][0]); its[0][0].Tag != tag.ReferencedSOPInstanceUID || !uidForm.MatchString(uid) {
		return fmt.Errorf("nested UID %q not replaced", uid)
	}
	return nil
}

func checkClean(e *dicom.Element, p probe, shift int, cleanText bool) error {
	got := str(e)
	switch p.vr {
	case "DA", "DT":
		want := time.Date(2020, 3, 15, 0, 0, 0, 0, time.UTC).AddDate(0, 0, shift).Format("20060102")
		if p.vr == "DT" {
			want += "101010.5"
		}
		if got != want {
			return fmt.Errorf("got %q, want %q (shifted %d days)", got, want, shift)
		}
	case "TM":
		if got != p.orig[0] {
			return fmt.Errorf("got %q, want the time kept", got)
		}
	case "LO", "SH", "ST", "LT", "UT", "PN":
		if !cleanText {
			if got != p.orig[0] {
				return fmt.Errorf("got %q, want it kept", got)
			}
			return nil
		}
		if strings.Contains(got, "Doe") || strings.Contains(got, "1234567") || got == "" {
			return fmt.Errorf("got %q, want text with the name and number taken out", got)
		}
	}
	return nil
}
