// Package dicomtest builds synthetic DICOM Part 10 files for tests: CT and MR
// studies of made-up patients, with every kind of identifying attribute a
// PACS (location 5 of the paper) receives from a modality — Latin and Hangul
// names, IDs, dates, institution, physicians, device serials, UIDs, private
// tags and nested sequences — so that intake, scanning and de-identification
// can be tested without real patient data.
//
// Everything is derived from Options.Seed: the same options give the same
// bytes.
package dicomtest

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Standard UIDs used by the generated files.
const (
	CTImageStorage         = "1.2.840.10008.5.1.4.1.1.2"
	MRImageStorage         = "1.2.840.10008.5.1.4.1.1.4"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
)

// PrivateCreator is the private creator of the (0009,xx) block every file
// carries; its (0009,1001) element holds the patient's name, as vendor
// blocks often do.
const PrivateCreator = "MEDSEC SYNTHETIC 1"

// Options say what to generate. Zero values get the defaults in brackets.
type Options struct {
	Seed               uint64
	Patients           int // [2]
	StudiesPerPatient  int // [1]
	SeriesPerStudy     int // [2]
	InstancesPerSeries int // [3]
	Rows, Columns      int // [8 x 8] 16-bit pixels
	// BurnedInAnnotation writes (0028,0301) = YES instead of NO.
	BurnedInAnnotation bool
	// Preamble, when set, is copied into the 128-byte preamble (a polyglot
	// test puts an executable header there). At most 128 bytes.
	Preamble []byte
	// Implicit writes Implicit VR Little Endian instead of Explicit.
	Implicit bool
	// Override gives patient i the non-empty fields of Override[i] (an
	// intake test matches a study to a registered patient's MRN).
	Override []Patient
}

// Patient is a made-up patient.
type Patient struct {
	ID         string
	NameLatin  string // DICOM PN form, e.g. "Hong^Gildong"
	NameHangul string // e.g. "홍^길동"
	BirthDate  string // YYYYMMDD
	Sex        string
}

// PersonName is the PN value written to the file: alphabetic and
// ideographic groups.
func (p Patient) PersonName() string { return p.NameLatin + "=" + p.NameHangul }

// Instance is one generated file.
type Instance struct {
	Patient           Patient
	AccessionNumber   string
	StudyInstanceUID  string
	SeriesInstanceUID string
	SOPInstanceUID    string
	SOPClassUID       string
	StudyDate         string
	Modality          string
	Data              []byte // the complete Part 10 file
}

// relPath is a file path for an instance: patient/study/series/n.dcm,
// made of numbers only, never names.
func relPath(p, st, se, i int) string {
	return filepath.Join(fmt.Sprintf("P%03d", p), fmt.Sprintf("ST%02d", st), fmt.Sprintf("SE%02d", se), fmt.Sprintf("IM%04d.dcm", i))
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Patients, 2)
	def(&o.StudiesPerPatient, 1)
	def(&o.SeriesPerStudy, 2)
	def(&o.InstancesPerSeries, 3)
	def(&o.Rows, 8)
	def(&o.Columns, 8)
	return o
}

// Generate builds every instance described by opts.
func Generate(opts Options) ([]Instance, error) {
	var out []Instance
	err := generate(opts, func(_ string, in Instance) error {
		out = append(out, in)
		return nil
	})
	return out, err
}

// WriteDir writes every instance under dir (created if missing) and returns
// them with their relative paths.
func WriteDir(dir string, opts Options) (map[string]Instance, error) {
	out := map[string]Instance{}
	err := generate(opts, func(rel string, in Instance) error {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		out[rel] = in
		return os.WriteFile(path, in.Data, 0o644)
	})
	return out, err
}

func generate(opts Options, emit func(rel string, in Instance) error) error {
	opts = opts.withDefaults()
	if len(opts.Preamble) > 128 {
		return fmt.Errorf("generate: preamble of %d bytes is longer than 128", len(opts.Preamble))
	}
	g := &generator{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x6d656473656321))}
	for p := range opts.Patients {
		pat := g.patient(p)
		for st := range opts.StudiesPerPatient {
			if err := g.study(pat, p, st, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

type generator struct {
	opts Options
	rng  *rand.Rand
}

var (
	surnames  = [][2]string{{"Kim", "김"}, {"Lee", "이"}, {"Park", "박"}, {"Choi", "최"}, {"Jung", "정"}, {"Hong", "홍"}}
	givennams = [][2]string{{"Minjun", "민준"}, {"Seoyeon", "서연"}, {"Jiho", "지호"}, {"Haeun", "하은"}, {"Gildong", "길동"}, {"Yuna", "유나"}}
)

func (g *generator) patient(p int) Patient {
	gen := g.generated(p)
	if p >= len(g.opts.Override) {
		return gen
	}
	o := g.opts.Override[p]
	for _, f := range []struct{ dst, src *string }{{&gen.ID, &o.ID}, {&gen.NameLatin, &o.NameLatin},
		{&gen.NameHangul, &o.NameHangul}, {&gen.BirthDate, &o.BirthDate}, {&gen.Sex, &o.Sex}} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	return gen
}

func (g *generator) generated(p int) Patient {
	s := surnames[g.rng.IntN(len(surnames))]
	n := givennams[g.rng.IntN(len(givennams))]
	return Patient{
		ID:         fmt.Sprintf("MRN%07d", 1000000+p*7919+g.rng.IntN(7919)),
		NameLatin:  s[0] + "^" + n[0],
		NameHangul: s[1] + "^" + n[1],
		BirthDate:  fmt.Sprintf("19%02d%02d%02d", 30+g.rng.IntN(70), 1+g.rng.IntN(12), 1+g.rng.IntN(28)),
		Sex:        []string{"M", "F"}[g.rng.IntN(2)],
	}
}

// uid returns a fresh 2.25 UID from the seeded generator.
func (g *generator) uid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return "2.25." + new(big.Int).SetBytes(b[:]).String()
}

func (g *generator) study(pat Patient, p, st int, emit func(string, Instance) error) error {
	s := studyInfo{
		patient:   pat,
		studyUID:  g.uid(),
		accession: fmt.Sprintf("ACC%08d", g.rng.IntN(100000000)),
		date:      fmt.Sprintf("20%02d%02d%02d", 15+g.rng.IntN(10), 1+g.rng.IntN(12), 1+g.rng.IntN(28)),
		modality:  []string{"CT", "MR"}[(p+st)%2],
		frameUID:  g.uid(),
		serial:    fmt.Sprintf("SN-%06d", g.rng.IntN(1000000)),
	}
	for se := range g.opts.SeriesPerStudy {
		seriesUID := g.uid()
		prevSOP := ""
		for i := range g.opts.InstancesPerSeries {
			in, err := g.instance(s, seriesUID, se, i, prevSOP)
			if err != nil {
				return fmt.Errorf("generate instance %d/%d/%d/%d: %w", p, st, se, i, err)
			}
			prevSOP = in.SOPInstanceUID
			if err := emit(relPath(p, st, se, i), in); err != nil {
				return err
			}
		}
	}
	return nil
}

type studyInfo struct {
	patient                    Patient
	studyUID, accession, date  string
	modality, frameUID, serial string
}

func (g *generator) instance(s studyInfo, seriesUID string, se, i int, prevSOP string) (Instance, error) {
	in := Instance{
		Patient:           s.patient,
		AccessionNumber:   s.accession,
		StudyInstanceUID:  s.studyUID,
		SeriesInstanceUID: seriesUID,
		SOPInstanceUID:    g.uid(),
		SOPClassUID:       CTImageStorage,
		StudyDate:         s.date,
		Modality:          s.modality,
	}
	if s.modality == "MR" {
		in.SOPClassUID = MRImageStorage
	}
	elems, err := g.elements(in, s, se, i, prevSOP)
	if err != nil {
		return Instance{}, err
	}
	in.Data, err = Encode(elems, g.opts.Preamble)
	return in, err
}

// Encode writes elements as a Part 10 file with the library's writer, after
// sorting them into tag order, and copies preamble into the first bytes.
func Encode(elems []*dicom.Element, preamble []byte) ([]byte, error) {
	if len(preamble) > 128 {
		return nil, fmt.Errorf("encode: preamble of %d bytes is longer than 128", len(preamble))
	}
	SortElements(elems)
	var buf bytes.Buffer
	if err := dicom.Write(&buf, dicom.Dataset{Elements: elems}, dicom.SkipVRVerification()); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	out := buf.Bytes()
	copy(out, preamble)
	return out, nil
}

// SortElements puts elements into ascending tag order, as Part 5 requires.
func SortElements(elems []*dicom.Element) {
	slices.SortStableFunc(elems, func(a, b *dicom.Element) int { return a.Tag.Compare(b.Tag) })
}

// Private builds an element the standard dictionary does not know.
func Private(t tag.Tag, vr string, value any) (*dicom.Element, error) {
	v, err := dicom.NewValue(value)
	if err != nil {
		return nil, fmt.Errorf("private element %s: %w", t, err)
	}
	return &dicom.Element{Tag: t, ValueRepresentation: tag.GetVRKind(t, vr), RawValueRepresentation: vr, Value: v}, nil
}
