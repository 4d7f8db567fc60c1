package dicomdeid

import (
	"crypto/sha256"
	"math/big"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Coded methods of PS3.16 CID 7050 "De-identification Method".
type methodCode struct{ value, meaning string }

var (
	codeBasic          = methodCode{"113100", "Basic Application Confidentiality Profile"}
	codeDescriptors    = methodCode{"113105", "Clean Descriptors Option"}
	codeModifiedDates  = methodCode{"113107", "Retain Longitudinal Temporal Information Modified Dates Option"}
	codePatientChars   = methodCode{"113108", "Retain Patient Characteristics Option"}
	codeDeviceIdentity = methodCode{"113109", "Retain Device Identity Option"}
	codeSafePrivate    = methodCode{"113111", "Retain Safe Private Option"}
)

// implementationUID identifies medsec as the writer of the file meta
// information: a fixed UUID-derived UID.
var implementationUID = func() string {
	sum := sha256.Sum256([]byte("medsec dicomdeid implementation"))
	return "2.25." + new(big.Int).SetBytes(sum[:16]).String()
}()

const implementationVersion = "MEDSEC_DEID_1"

func (d *Deidentifier) methodCodes() []methodCode {
	codes := []methodCode{codeBasic}
	for _, c := range []struct {
		on   bool
		code methodCode
	}{
		{d.opts.CleanDescriptors, codeDescriptors},
		{d.opts.RetainLongitudinalModifiedDates, codeModifiedDates},
		{d.opts.RetainPatientCharacteristics, codePatientChars},
		{d.opts.RetainDeviceIdentity, codeDeviceIdentity},
		{len(d.opts.SafePrivate) > 0, codeSafePrivate},
	} {
		if c.on {
			codes = append(codes, c.code)
		}
	}
	return codes
}

// methodElements records the de-identification (PS3.15 E.1.1 items 6-8):
// Patient Identity Removed, De-identification Method and its code sequence,
// and whether dates were modified or removed.
func (p *pass) methodElements() []*dicom.Element {
	codes := p.d.methodCodes()
	meanings := make([]string, len(codes))
	items := make([][]*dicom.Element, len(codes))
	for i, c := range codes {
		meanings[i] = c.meaning
		items[i] = []*dicom.Element{
			element(tag.CodeValue, []string{c.value}),
			element(tag.CodingSchemeDesignator, []string{"DCM"}),
			element(tag.CodeMeaning, []string{c.meaning}),
		}
	}
	temporal := "REMOVED"
	if p.d.opts.RetainLongitudinalModifiedDates {
		temporal = "MODIFIED"
	}
	return []*dicom.Element{
		element(tag.PatientIdentityRemoved, []string{"YES"}),
		element(tag.DeidentificationMethod, meanings),
		element(tag.DeidentificationMethodCodeSequence, items),
		element(tag.LongitudinalTemporalInformationModified, []string{temporal}),
	}
}

// meta writes new file meta information: nothing of the original's is kept
// but the SOP class and transfer syntax, and the replaced instance UID.
func (p *pass) meta(m fileMeta, body []*dicom.Element) []*dicom.Element {
	sopInstance, sopClass := p.rep.SOPInstanceUID, m.sopClass
	if m.sopInstance != "" {
		sopInstance = p.d.UID(m.sopInstance)
		p.record("", Tag{0x0002, 0x0003}, p.d.rules.lookup(Tag{0x0002, 0x0003}), Replace, "")
	}
	for _, e := range body {
		if sopClass == "" && tagOf(e) == sopClassTag {
			sopClass = firstString(e)
		}
	}
	return []*dicom.Element{
		element(tag.FileMetaInformationVersion, []byte{0, 1}),
		element(tag.MediaStorageSOPClassUID, []string{sopClass}),
		element(tag.MediaStorageSOPInstanceUID, []string{sopInstance}),
		element(tag.TransferSyntaxUID, []string{m.transferSyntax}),
		element(tag.ImplementationClassUID, []string{implementationUID}),
		element(tag.ImplementationVersionName, []string{implementationVersion}),
	}
}

// element builds a standard element; the tags used here are all in the
// library's dictionary and the values of the types it accepts.
func element(t tag.Tag, value any) *dicom.Element {
	e, _ := dicom.NewElement(t, value)
	return e
}
