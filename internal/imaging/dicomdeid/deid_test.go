package dicomdeid

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func TestNewRejectsShortSecret(t *testing.T) {
	if _, err := New(Options{ProjectSecret: []byte("short")}); err == nil {
		t.Error("New with a 5-byte secret: got no error")
	}
}

// TestImportantAttributes checks by hand the attributes that matter most,
// independently of the table.
func TestImportantAttributes(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 7})[0]
	d := newDeid(t, Options{})
	_, ds, _ := run(t, d, in.Data)
	pseudo := d.Pseudonym(in.Patient.ID)
	for _, tc := range []struct {
		name string
		tag  tag.Tag
		want string
		gone bool
	}{
		{name: "PatientName", tag: tag.PatientName, want: pseudo},
		{name: "PatientID", tag: tag.PatientID, want: pseudo},
		{name: "PatientBirthDate", tag: tag.PatientBirthDate, want: ""},
		{name: "AccessionNumber", tag: tag.AccessionNumber, want: ""},
		{name: "ReferringPhysicianName", tag: tag.ReferringPhysicianName, want: ""},
		{name: "StudyDate", tag: tag.StudyDate, want: ""},
		{name: "StudyTime", tag: tag.StudyTime, want: ""},
		{name: "InstitutionName", tag: tag.InstitutionName, gone: true},
		{name: "InstitutionAddress", tag: tag.InstitutionAddress, gone: true},
		{name: "OtherPatientIDs", tag: tag.OtherPatientIDs, gone: true},
		{name: "OtherPatientIDsSequence", tag: tag.OtherPatientIDsSequence, gone: true},
		{name: "PatientAddress", tag: tag.PatientAddress, gone: true},
		{name: "PatientTelephoneNumbers", tag: tag.PatientTelephoneNumbers, gone: true},
		{name: "PerformingPhysicianName", tag: tag.PerformingPhysicianName, gone: true},
		{name: "DeviceSerialNumber", tag: tag.DeviceSerialNumber, gone: true},
		{name: "StationName", tag: tag.StationName, gone: true},
		{name: "StudyDescription", tag: tag.StudyDescription, gone: true},
		{name: "SeriesDate", tag: tag.SeriesDate, gone: true},
		{name: "InstanceCreationDate (date beyond the table)", tag: tag.InstanceCreationDate, gone: true},
		{name: "Modality kept", tag: tag.Modality, want: in.Modality},
		{name: "Manufacturer kept", tag: tag.Manufacturer, want: "MEDSEC SIMULATED"},
		{name: "SOPClassUID kept", tag: tag.SOPClassUID, want: dicomtest.CTImageStorage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := find(ds, tc.tag)
			switch {
			case tc.gone && e != nil:
				t.Errorf("got %q, want the attribute removed", str(e))
			case !tc.gone && e == nil:
				t.Errorf("attribute removed, want %q", tc.want)
			case !tc.gone && str(e) != tc.want:
				t.Errorf("got %q, want %q", str(e), tc.want)
			}
		})
	}
	if pseudo == in.Patient.ID || !strings.HasPrefix(pseudo, "ANON") {
		t.Errorf("pseudonym %q: want ANON… and not the original ID", pseudo)
	}
}

// TestNoIdentityLeft looks for every identifying value the generator wrote
// anywhere in the output bytes, under every option.
func TestNoIdentityLeft(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 11})[1]
	for name, opts := range map[string]Options{
		"basic":       {},
		"all options": {RetainLongitudinalModifiedDates: true, RetainPatientCharacteristics: true, CleanDescriptors: true, RetainDeviceIdentity: true},
	} {
		t.Run(name, func(t *testing.T) {
			_, ds, out := run(t, newDeid(t, opts), in.Data)
			text := allText(ds)
			surname, given, _ := strings.Cut(in.Patient.NameLatin, "^")
			for _, secret := range []string{in.Patient.ID, surname, given, in.Patient.NameHangul,
				in.AccessionNumber, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID,
				in.Patient.BirthDate, "800101-1234567", "Seoul General", "Sejong-daero", "CT_SEOUL_01"} {
				if strings.Contains(text, secret) || bytes.Contains(out, []byte(secret)) {
					t.Errorf("output still holds %q", secret)
				}
			}
			if !opts.RetainLongitudinalModifiedDates && strings.Contains(text, in.StudyDate) {
				t.Errorf("output still holds the study date %s", in.StudyDate)
			}
		})
	}
}

func TestStudyDateModifiedDates(t *testing.T) {
	ins := generate(t, dicomtest.Options{Seed: 3, Patients: 2, SeriesPerStudy: 1, InstancesPerSeries: 2})
	d := newDeid(t, Options{RetainLongitudinalModifiedDates: true})
	shift := map[string]string{}
	for _, in := range ins {
		_, ds, _ := run(t, d, in.Data)
		got := str(find(ds, tag.StudyDate))
		if got == "" || got == in.StudyDate {
			t.Fatalf("StudyDate %q: want the original %s shifted", got, in.StudyDate)
		}
		if got >= in.StudyDate {
			t.Errorf("StudyDate %s: want it moved back from %s", got, in.StudyDate)
		}
		if prev, ok := shift[in.Patient.ID]; ok && prev != got {
			t.Errorf("patient %s: study dates %s and %s of one study differ", in.Patient.ID, prev, got)
		}
		shift[in.Patient.ID] = got
		if got, want := str(find(ds, tag.StudyTime)), "101010"; got != want {
			t.Errorf("StudyTime %q: want the time kept, %q", got, want)
		}
		if got, want := str(find(ds, tag.LongitudinalTemporalInformationModified)), "MODIFIED"; got != want {
			t.Errorf("(0028,0303) %q, want %q", got, want)
		}
	}
}

func TestShiftDateTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		days int
		want string
		ok   bool
	}{
		{"20200301", -1, "20200229", true},
		{"20200315101010.5+0900", -15, "20200229101010.5+0900", true},
		{"2020", -400, "2018", true},
		{"202003", -31, "202001", true}, // the first of the month moves
		{"2020.03.01", -1, "20200229", true},
		{"", -3, "", true},
		{"yesterday", -3, "", false},
		{"20201340", -3, "", false},
	} {
		got, ok := shiftDateTime(tc.in, tc.days)
		if got != tc.want || ok != tc.ok {
			t.Errorf("shiftDateTime(%q, %d): got %q %v, want %q %v", tc.in, tc.days, got, ok, tc.want, tc.ok)
		}
	}
}

// TestUIDsConsistent: every file of one study gets the same new Study
// Instance UID, references between images follow the new UIDs, and a
// second de-identifier with the same secret agrees.
func TestUIDsConsistent(t *testing.T) {
	ins := generate(t, dicomtest.Options{Seed: 5, Patients: 1, SeriesPerStudy: 2, InstancesPerSeries: 3})
	d1, d2 := newDeid(t, Options{}), newDeid(t, Options{})
	other := newDeid(t, Options{ProjectSecret: bytes.Repeat([]byte("x"), 32)})
	studies, sops := map[string]bool{}, map[string]string{}
	for _, in := range ins {
		rep, ds, _ := run(t, d1, in.Data)
		studies[rep.StudyInstanceUID] = true
		sops[in.SOPInstanceUID] = rep.SOPInstanceUID
		if got := str(find(ds, tag.MediaStorageSOPInstanceUID)); got != rep.SOPInstanceUID {
			t.Errorf("(0002,0003) %s differs from SOP Instance UID %s", got, rep.SOPInstanceUID)
		}
		if !uidForm.MatchString(rep.SOPInstanceUID) || !uidForm.MatchString(rep.SeriesInstanceUID) {
			t.Errorf("new UIDs %s %s: want 2.25 form", rep.SOPInstanceUID, rep.SeriesInstanceUID)
		}
		if r2, _, _ := run(t, d2, in.Data); r2.SOPInstanceUID != rep.SOPInstanceUID {
			t.Errorf("same secret, different UID: %s vs %s", r2.SOPInstanceUID, rep.SOPInstanceUID)
		}
		if r3, _, _ := run(t, other, in.Data); r3.SOPInstanceUID == rep.SOPInstanceUID {
			t.Errorf("another project's secret gave the same UID")
		}
	}
	if len(studies) != 1 {
		t.Errorf("one study became %d studies", len(studies))
	}
	// Each image after the first references the previous one of its series.
	for _, in := range ins[1:] {
		_, ds, _ := run(t, d1, in.Data)
		ref := items(find(ds, tag.ReferencedImageSequence))
		if len(ref) != 1 {
			continue // the first image of the second series
		}
		got := str(ref[0][1])
		found := false
		for _, v := range sops {
			found = found || v == got
		}
		if !found {
			t.Errorf("Referenced SOP Instance UID %s is not the new UID of any image", got)
		}
	}
}

func TestPrivateTagsRemoved(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 9})[0]
	rep, ds, _ := run(t, newDeid(t, Options{}), in.Data)
	walkAll(ds.Elements, func(e *dicom.Element) {
		if e.Tag.Group%2 == 1 {
			t.Errorf("private element %s left", e.Tag)
		}
	})
	var removed []string
	for _, c := range rep.Removed() {
		if c.Tag.Private() {
			removed = append(removed, c.Path)
		}
	}
	want := []string{"(0009,0010)", "(0009,1001)", "(0009,1002)", "(0009,1003)"}
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("private removals in the report (-want +got):\n%s", diff)
	}
}

func TestSafePrivateKept(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 9})[0]
	d := newDeid(t, Options{SafePrivate: []PrivateAttribute{{Creator: dicomtest.PrivateCreator, Group: 0x0009, Element: 0x02}}})
	_, ds, _ := run(t, d, in.Data)
	var kept []tag.Tag
	for _, e := range ds.Elements {
		if e.Tag.Group == 0x0009 {
			kept = append(kept, e.Tag)
		}
	}
	want := []tag.Tag{{Group: 0x0009, Element: 0x0010}, {Group: 0x0009, Element: 0x1002}}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("kept private tags (-want +got):\n%s", diff)
	}
}

func TestDeidentificationMethodWritten(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 1})[0]
	for _, tc := range []struct {
		opts  Options
		codes []string
	}{
		{Options{}, []string{"113100"}},
		{Options{CleanDescriptors: true, RetainLongitudinalModifiedDates: true, RetainPatientCharacteristics: true, RetainDeviceIdentity: true},
			[]string{"113100", "113105", "113107", "113108", "113109"}},
	} {
		_, ds, _ := run(t, newDeid(t, tc.opts), in.Data)
		if got := str(find(ds, tag.PatientIdentityRemoved)); got != "YES" {
			t.Errorf("(0012,0062) = %q, want YES", got)
		}
		methods := strs(find(ds, tag.DeidentificationMethod))
		if len(methods) != len(tc.codes) || methods[0] != "Basic Application Confidentiality Profile" {
			t.Errorf("(0012,0063) = %q, want %d methods starting with the basic profile", methods, len(tc.codes))
		}
		var codes []string
		for _, it := range items(find(ds, tag.DeidentificationMethodCodeSequence)) {
			if got := str(it[1]); got != "DCM" {
				t.Errorf("coding scheme %q, want DCM", got)
			}
			codes = append(codes, str(it[0]))
		}
		if diff := cmp.Diff(tc.codes, codes); diff != "" {
			t.Errorf("(0012,0064) codes (-want +got):\n%s", diff)
		}
	}
}

func TestBurnedInAnnotation(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 2, BurnedInAnnotation: true})[0]
	var out bytes.Buffer
	_, err := newDeid(t, Options{}).File(context.Background(), bytes.NewReader(in.Data), &out)
	if !errors.Is(err, ErrBurnedInAnnotation) {
		t.Fatalf("got error %v, want ErrBurnedInAnnotation", err)
	}
	if out.Len() != 0 {
		t.Errorf("refused file wrote %d bytes", out.Len())
	}
	rep, _, _ := run(t, newDeid(t, Options{AcceptBurnedIn: true}), in.Data)
	if !rep.BurnedInAccepted {
		t.Error("accepted burned-in image: report does not say so")
	}
}

func TestPolyglotPreambleZeroed(t *testing.T) {
	preamble := append([]byte("MZ\x90\x00"), bytes.Repeat([]byte{0xCC}, 60)...)
	in := generate(t, dicomtest.Options{Seed: 4, Preamble: preamble})[0]
	if !bytes.HasPrefix(in.Data, []byte("MZ")) {
		t.Fatal("generator did not write the preamble")
	}
	run(t, newDeid(t, Options{}), in.Data) // run checks the preamble is zero
}

func TestCleanDescriptorsHangul(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 12})[0]
	_, ds, _ := run(t, newDeid(t, Options{CleanDescriptors: true}), in.Data)
	surname, given, _ := strings.Cut(in.Patient.NameLatin, "^")
	for _, tg := range []tag.Tag{tag.StudyDescription, tag.SeriesDescription, tag.PatientComments, tag.ImageComments} {
		got := str(find(ds, tg))
		if got == "" {
			t.Errorf("%s: removed, want it cleaned", tg)
		}
		for _, secret := range []string{surname, given, in.Patient.NameHangul, in.Patient.ID} {
			if strings.Contains(got, secret) {
				t.Errorf("%s = %q still holds %q", tg, got, secret)
			}
		}
	}
	if got := str(find(ds, tag.StudyDescription)); !strings.HasPrefix(got, in.Modality+" chest for") {
		t.Errorf("StudyDescription %q: want the clinical words kept", got)
	}
}

func TestCleanTextHook(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 12})[0]
	d := newDeid(t, Options{CleanDescriptors: true, CleanText: func(s string) string { return "hooked:" + s }})
	_, ds, _ := run(t, d, in.Data)
	if got := str(find(ds, tag.StudyDescription)); !strings.HasPrefix(got, "hooked:") {
		t.Errorf("StudyDescription %q: the CleanText hook was not called", got)
	}
}

func TestRetainOptions(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 13})[0]
	opts := Options{RetainPatientCharacteristics: true, RetainDeviceIdentity: true}
	_, ds, _ := run(t, newDeid(t, opts), in.Data)
	for _, tg := range []tag.Tag{tag.PatientSex, tag.PatientAge, tag.PatientWeight, tag.PatientSize,
		tag.EthnicGroup, tag.DeviceSerialNumber, tag.StationName} {
		if str(find(ds, tg)) == "" {
			t.Errorf("%s: removed or emptied, want it kept", tg)
		}
	}
	if got := str(find(ds, tag.PatientSex)); got != in.Patient.Sex {
		t.Errorf("PatientSex %q, want %q", got, in.Patient.Sex)
	}
}

func TestCustomPseudonym(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 14})[0]
	d := newDeid(t, Options{Pseudonym: func(id string) string { return "STUDY-SUBJECT-7" }})
	rep, ds, _ := run(t, d, in.Data)
	if got := str(find(ds, tag.PatientID)); got != "STUDY-SUBJECT-7" || rep.Pseudonym != got {
		t.Errorf("PatientID %q, report %q: want the caller's pseudonym", got, rep.Pseudonym)
	}
}

func TestImplicitVRInput(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 15, Implicit: true})[0]
	_, ds, _ := run(t, newDeid(t, Options{}), in.Data)
	if got := str(find(ds, tag.TransferSyntaxUID)); got != dicomtest.ImplicitVRLittleEndian {
		t.Errorf("transfer syntax %q, want implicit kept", got)
	}
	if find(ds, tag.PixelData) == nil {
		t.Error("pixel data lost")
	}
}

func TestReportLists(t *testing.T) {
	in := generate(t, dicomtest.Options{Seed: 16})[0]
	rep, _, _ := run(t, newDeid(t, Options{RetainDeviceIdentity: true, CleanDescriptors: true}), in.Data)
	has := func(list []Change, path string) bool {
		for _, c := range list {
			if c.Path == path {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		list []Change
		path string
	}{
		{rep.Removed(), "(0008,0080)"},                // Institution Name
		{rep.Removed(), "(0040,0275)[0].(0040,1001)"}, // nested Requested Procedure ID
		{rep.Replaced(), "(0010,0010)"},
		{rep.Replaced(), "(0020,000D)"},
		{rep.Kept(), "(0018,1000)"}, // Device Serial Number under the device option
	} {
		if !has(tc.list, tc.path) {
			t.Errorf("report list lacks %s", tc.path)
		}
	}
	if rep.Untouched == 0 {
		t.Error("report counts no untouched attributes")
	}
}

func TestEncapsulatedPixelDataKept(t *testing.T) {
	frag := []byte{0xFF, 0xD8, 0x01, 0x02, 0xFF, 0xD9}
	data := rawFile("1.2.840.10008.1.2.4.50", patientID,
		explicitHeader(0x7FE0, 0x0010, "OB", undefinedLength),
		implicitHeader(0xFFFE, 0xE000, 0), implicitHeader(0xFFFE, 0xE000, uint32(len(frag))), frag, seqDelim)
	_, _, out := run(t, newDeid(t, Options{}), data)
	if !bytes.Contains(out, frag) {
		t.Error("compressed fragment lost")
	}
	if bytes.Contains(out, []byte("ID-0001")) {
		t.Error("patient ID left in the output")
	}
}

// TestEnhancedConformance: in an Enhanced CT image, Device Serial Number,
// Content Date and Acquisition DateTime are Type 1 and the Acquisition
// Context Sequence Type 2, so X/Z/D, Z/D and X/Z resolve to D, D and Z.
func TestEnhancedConformance(t *testing.T) {
	data := rawFile(explicitTS,
		explicit(0x0008, 0x0016, "UI", uidValue("1.2.840.10008.5.1.4.1.1.2.1")),
		explicit(0x0008, 0x0023, "DA", []byte("20200315")),
		explicit(0x0008, 0x002A, "DT", []byte("20200315101010")),
		explicit(0x0018, 0x1000, "LO", []byte("SN-12345")),
		explicit(0x0040, 0x0555, "SQ", nil))
	_, ds, _ := run(t, newDeid(t, Options{}), data)
	for _, tc := range []struct {
		tag  tag.Tag
		want string
	}{
		{tag.ContentDate, "19000101"},
		{tag.AcquisitionDateTime, "19000101000000"},
		{tag.DeviceSerialNumber, "ANONYMIZED"},
	} {
		if got := str(find(ds, tc.tag)); got != tc.want {
			t.Errorf("%s = %q, want the dummy %q", tc.tag, got, tc.want)
		}
	}
	if e := find(ds, tag.AcquisitionContextSequence); e == nil || len(items(e)) != 0 {
		t.Errorf("Acquisition Context Sequence: want present and empty")
	}
}
