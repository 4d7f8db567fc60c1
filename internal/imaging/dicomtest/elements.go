package dicomtest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// builder collects elements and keeps the first error, so the long list of
// attributes below reads as data.
type builder struct {
	elems []*dicom.Element
	err   error
}

func (b *builder) add(t tag.Tag, value any) {
	if b.err != nil {
		return
	}
	e, err := dicom.NewElement(t, value)
	if err != nil {
		b.err = fmt.Errorf("element %s: %w", t, err)
		return
	}
	b.elems = append(b.elems, e)
}

func (b *builder) private(t tag.Tag, vr string, value any) {
	if b.err != nil {
		return
	}
	e, err := Private(t, vr, value)
	if err != nil {
		b.err = err
		return
	}
	b.elems = append(b.elems, e)
}

func str(v ...string) []string { return v }

// seq builds the value of a sequence element from items of elements.
func (b *builder) seq(items ...[]*dicom.Element) [][]*dicom.Element { return items }

// item builds one sequence item's elements with a nested builder.
func (b *builder) item(fill func(*builder)) []*dicom.Element {
	nb := &builder{}
	fill(nb)
	if nb.err != nil && b.err == nil {
		b.err = nb.err
	}
	SortElements(nb.elems)
	return nb.elems
}

func (g *generator) elements(in Instance, s studyInfo, se, i int, prevSOP string) ([]*dicom.Element, error) {
	b := &builder{}
	g.meta(b, in)
	g.patientAttrs(b, in.Patient)
	g.studyAttrs(b, in, s, se, i)
	g.equipmentAttrs(b, s)
	g.requestAttrs(b, s)
	g.referencedImage(b, in, prevSOP)
	g.imageAttrs(b, s, i)
	g.privateAttrs(b, in.Patient)
	return b.elems, b.err
}

func (g *generator) meta(b *builder, in Instance) {
	ts := ExplicitVRLittleEndian
	if g.opts.Implicit {
		ts = ImplicitVRLittleEndian
	}
	b.add(tag.FileMetaInformationVersion, []byte{0, 1})
	b.add(tag.MediaStorageSOPClassUID, str(in.SOPClassUID))
	b.add(tag.MediaStorageSOPInstanceUID, str(in.SOPInstanceUID))
	b.add(tag.TransferSyntaxUID, str(ts))
	b.add(tag.ImplementationClassUID, str("2.25.1234567890"))
	b.add(tag.ImplementationVersionName, str("MODALITY_SIM_1"))
	b.add(tag.SourceApplicationEntityTitle, str("CT_SEOUL_01"))
}

func (g *generator) patientAttrs(b *builder, p Patient) {
	b.add(tag.SpecificCharacterSet, str("ISO_IR 192"))
	b.add(tag.PatientName, str(p.PersonName()))
	b.add(tag.PatientID, str(p.ID))
	b.add(tag.IssuerOfPatientID, str("SEOUL GENERAL"))
	b.add(tag.PatientBirthDate, str(p.BirthDate))
	b.add(tag.PatientSex, str(p.Sex))
	b.add(tag.PatientAge, str(fmt.Sprintf("%03dY", 20+g.rng.IntN(60))))
	b.add(tag.PatientSize, str("1.72"))
	b.add(tag.PatientWeight, str("68.5"))
	b.add(tag.PatientAddress, str("12 Sejong-daero, Jung-gu, Seoul"))
	b.add(tag.PatientTelephoneNumbers, str(fmt.Sprintf("010-%04d-%04d", g.rng.IntN(10000), g.rng.IntN(10000))))
	b.add(tag.OtherPatientIDs, str("800101-1234567"))
	b.add(tag.EthnicGroup, str("KOREAN"))
	b.add(tag.PatientComments, str("Patient "+p.NameLatin+" prefers morning slots"))
	b.add(tag.AdditionalPatientHistory, str("Referred by Dr Lee, ID "+p.ID))
	b.add(tag.OtherPatientIDsSequence, b.seq(b.item(func(nb *builder) {
		nb.add(tag.PatientID, str(p.ID+"-OLD"))
		nb.add(tag.IssuerOfPatientID, str("BUSAN CLINIC"))
		nb.add(tag.TypeOfPatientID, str("TEXT"))
	})))
}

func (g *generator) studyAttrs(b *builder, in Instance, s studyInfo, se, i int) {
	b.add(tag.ImageType, str("ORIGINAL", "PRIMARY", "AXIAL"))
	b.add(tag.InstanceCreationDate, str(s.date))
	b.add(tag.InstanceCreationTime, str("101500"))
	b.add(tag.SOPClassUID, str(in.SOPClassUID))
	b.add(tag.SOPInstanceUID, str(in.SOPInstanceUID))
	b.add(tag.StudyDate, str(s.date))
	b.add(tag.SeriesDate, str(s.date))
	b.add(tag.AcquisitionDate, str(s.date))
	b.add(tag.ContentDate, str(s.date))
	b.add(tag.AcquisitionDateTime, str(s.date+"101203.250000"))
	b.add(tag.StudyTime, str("101010"))
	b.add(tag.SeriesTime, str("101100"))
	b.add(tag.AcquisitionTime, str("101203.25"))
	b.add(tag.ContentTime, str("101204"))
	b.add(tag.AccessionNumber, str(s.accession))
	b.add(tag.Modality, str(s.modality))
	b.add(tag.ReferringPhysicianName, str("Lee^Sunhee=이^순희"))
	b.add(tag.StudyDescription, str(s.modality+" chest for "+s.patient.NameLatin+" ("+s.patient.ID+")"))
	b.add(tag.SeriesDescription, str(fmt.Sprintf("Series %d %s", se+1, s.patient.NameHangul)))
	b.add(tag.PhysiciansOfRecord, str("Park^Jiwoo"))
	b.add(tag.PerformingPhysicianName, str("Choi^Minho"))
	b.add(tag.NameOfPhysiciansReadingStudy, str("Kang^Dahye"))
	b.add(tag.OperatorsName, str("Yoon^Taeho"))
	b.add(tag.StudyInstanceUID, str(s.studyUID))
	b.add(tag.SeriesInstanceUID, str(in.SeriesInstanceUID))
	b.add(tag.StudyID, str(fmt.Sprintf("S%05d", g.rng.IntN(100000))))
	b.add(tag.SeriesNumber, str(fmt.Sprint(se+1)))
	b.add(tag.InstanceNumber, str(fmt.Sprint(i+1)))
	b.add(tag.FrameOfReferenceUID, str(s.frameUID))
	b.add(tag.PositionReferenceIndicator, str(""))
	b.add(tag.ImageComments, str("Reviewed with "+s.patient.NameLatin))
}

func (g *generator) equipmentAttrs(b *builder, s studyInfo) {
	b.add(tag.Manufacturer, str("MEDSEC SIMULATED"))
	b.add(tag.InstitutionName, str("Seoul General Hospital"))
	b.add(tag.InstitutionAddress, str("101 Daehak-ro, Jongno-gu, Seoul"))
	b.add(tag.StationName, str("CTROOM3"))
	b.add(tag.InstitutionalDepartmentName, str("Radiology"))
	b.add(tag.ManufacturerModelName, str("SimScan 64"))
	b.add(tag.DeviceSerialNumber, str(s.serial))
	b.add(tag.SoftwareVersions, str("1.0.0"))
	b.add(tag.ProtocolName, str("CHEST ROUTINE"))
	b.add(tag.BodyPartExamined, str("CHEST"))
	b.add(tag.SliceThickness, str("1.0"))
	if s.modality == "CT" {
		b.add(tag.KVP, str("120"))
	} else {
		b.add(tag.MagneticFieldStrength, str("3"))
	}
	b.add(tag.PatientPosition, str("HFS"))
}

// requestAttrs writes a Request Attributes Sequence whose item nests a code
// sequence, so removal and cleaning have to walk two levels down.
func (g *generator) requestAttrs(b *builder, s studyInfo) {
	b.add(tag.RequestAttributesSequence, b.seq(b.item(func(nb *builder) {
		nb.add(tag.RequestedProcedureID, str("RP"+s.accession))
		nb.add(tag.ScheduledProcedureStepID, str("SPS1"))
		nb.add(tag.RequestedProcedureDescription, str("Chest CT for "+s.patient.NameLatin))
		nb.add(tag.ReasonForTheRequestedProcedure, str("Follow-up of "+s.patient.ID))
		nb.add(tag.StudyInstanceUID, str(s.studyUID))
		nb.add(tag.RequestedProcedureCodeSequence, nb.seq(nb.item(func(cb *builder) {
			cb.add(tag.CodeValue, str("CTCHEST"))
			cb.add(tag.CodingSchemeDesignator, str("99LOCAL"))
			cb.add(tag.CodeMeaning, str("CT Chest"))
		})))
	})))
}

func (g *generator) referencedImage(b *builder, in Instance, prevSOP string) {
	if prevSOP == "" {
		return
	}
	b.add(tag.ReferencedImageSequence, b.seq(b.item(func(nb *builder) {
		nb.add(tag.ReferencedSOPClassUID, str(in.SOPClassUID))
		nb.add(tag.ReferencedSOPInstanceUID, str(prevSOP))
	})))
}

func (g *generator) imageAttrs(b *builder, s studyInfo, i int) {
	rows, cols := g.opts.Rows, g.opts.Columns
	burned := "NO"
	if g.opts.BurnedInAnnotation {
		burned = "YES"
	}
	b.add(tag.ImagePositionPatient, str("-100", "-100", fmt.Sprint(i)))
	b.add(tag.ImageOrientationPatient, str("1", "0", "0", "0", "1", "0"))
	b.add(tag.SamplesPerPixel, []int{1})
	b.add(tag.PhotometricInterpretation, str("MONOCHROME2"))
	b.add(tag.Rows, []int{rows})
	b.add(tag.Columns, []int{cols})
	b.add(tag.PixelSpacing, str("0.5", "0.5"))
	b.add(tag.BitsAllocated, []int{16})
	b.add(tag.BitsStored, []int{12})
	b.add(tag.HighBit, []int{11})
	b.add(tag.PixelRepresentation, []int{0})
	b.add(tag.BurnedInAnnotation, str(burned))
	b.add(tag.WindowCenter, str("40"))
	b.add(tag.WindowWidth, str("400"))
	pix := make([]byte, rows*cols*2)
	for k := 0; k < rows*cols; k++ {
		binary.LittleEndian.PutUint16(pix[2*k:], uint16(g.rng.IntN(4096)))
	}
	b.add(tag.PixelData, dicom.PixelDataInfo{IntentionallyUnprocessed: true, UnprocessedValueData: pix})
}

// privateAttrs writes a vendor block that leaks identity, as real ones do:
// the name in a private LO and a private sequence with the patient ID.
func (g *generator) privateAttrs(b *builder, p Patient) {
	b.private(tag.Tag{Group: 0x0009, Element: 0x0010}, "LO", str(PrivateCreator))
	b.private(tag.Tag{Group: 0x0009, Element: 0x1001}, "LO", str(p.NameLatin))
	b.private(tag.Tag{Group: 0x0009, Element: 0x1002}, "US", []int{42})
	creator, err1 := Private(tag.Tag{Group: 0x0009, Element: 0x0010}, "LO", str(PrivateCreator))
	inner, err2 := Private(tag.Tag{Group: 0x0009, Element: 0x1004}, "LO", str(p.ID))
	if err := errors.Join(err1, err2); err != nil {
		b.err = err
		return
	}
	b.private(tag.Tag{Group: 0x0009, Element: 0x1003}, "SQ", [][]*dicom.Element{{creator, inner}})
}
