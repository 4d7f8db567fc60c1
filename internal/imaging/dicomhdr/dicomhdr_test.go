package dicomhdr

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

func generated(t testing.TB, opts dicomtest.Options) dicomtest.Instance {
	t.Helper()
	opts.Patients, opts.SeriesPerStudy, opts.InstancesPerSeries = 1, 1, 1
	ins, err := dicomtest.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ins[0]
}

func TestRead(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicit=%v", implicit), func(t *testing.T) {
			in := generated(t, dicomtest.Options{Seed: 7, Implicit: implicit, Override: []dicomtest.Patient{{ID: "MRN-100000"}}})
			h, err := Read(in.Data)
			if err != nil {
				t.Fatal(err)
			}
			want := Header{PatientID: "MRN-100000", StudyUID: in.StudyInstanceUID, SeriesUID: in.SeriesInstanceUID, InstanceUID: in.SOPInstanceUID,
				SOPClassUID: in.SOPClassUID, Modality: in.Modality, StudyDate: in.StudyDate}
			got := h
			got.StudyTime, got.Description, got.MediaStorageClass, got.TransferSyntax = "", "", "", ""
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if h.Directory() || len(h.Missing()) != 0 {
				t.Errorf("an image read as directory=%v, missing %v", h.Directory(), h.Missing())
			}
			if h.Effective().Format("20060102") != in.StudyDate {
				t.Errorf("effective %s, want the study date %s", h.Effective(), in.StudyDate)
			}
		})
	}
}

func TestReadBad(t *testing.T) {
	good := generated(t, dicomtest.Options{Seed: 8}).Data
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no prefix", bytes.Repeat([]byte{0}, 200)},
		{"truncated meta", good[:140]},
		{"truncated data set", good[:len(good)/3]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Read(tt.data)
			if err == nil && len(h.Missing()) == 0 {
				t.Errorf("read a complete header from %s input: %+v", tt.name, h)
			}
			if err != nil && !errors.Is(err, ErrUnreadable) {
				t.Errorf("got %v, want ErrUnreadable", err)
			}
		})
	}
}

func TestEffective(t *testing.T) {
	for _, tt := range []struct {
		date, tm string
		want     time.Time
	}{
		{"20240501", "093015.123", time.Date(2024, 5, 1, 9, 30, 15, 0, time.UTC)},
		{"20240501", "0930", time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC)},
		{"20240501", "", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"20240501", "99", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"2024", "", time.Time{}},
		{"2024-05-01", "", time.Time{}},
	} {
		if got := (Header{StudyDate: tt.date, StudyTime: tt.tm}).Effective(); !got.Equal(tt.want) {
			t.Errorf("%q %q: got %s, want %s", tt.date, tt.tm, got, tt.want)
		}
	}
}

func TestZeroPreamble(t *testing.T) {
	poly := generated(t, dicomtest.Options{Seed: 9, Preamble: []byte("MZ\x90\x00")}).Data
	ZeroPreamble(poly)
	if !bytes.Equal(poly[:128], make([]byte, 128)) || string(poly[128:132]) != "DICM" {
		t.Error("preamble not zeroed")
	}
	notDICOM := []byte("MZ" + string(make([]byte, 200)))
	ZeroPreamble(notDICOM)
	if string(notDICOM[:2]) != "MZ" {
		t.Error("a file without the DICM prefix was changed")
	}
}

// fuzzSeeds are the committed seed corpus of FuzzIntakeHeader,
// regenerated with MEDSEC_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus.
func fuzzSeeds(t testing.TB) [][]byte {
	clean := generated(t, dicomtest.Options{Seed: 1, Rows: 2, Columns: 2}).Data
	implicit := generated(t, dicomtest.Options{Seed: 2, Rows: 2, Columns: 2, Implicit: true}).Data
	poly := generated(t, dicomtest.Options{Seed: 3, Rows: 2, Columns: 2, Preamble: []byte("\x7fELF\x02\x01\x01")}).Data
	huge := bytes.Clone(clean)
	binary.LittleEndian.PutUint32(huge[len(huge)-12:], 0xFFFFFFF0)
	return [][]byte{clean, implicit, poly, clean[:len(clean)/2], huge}
}

// FuzzReadHeader feeds any bytes to the attribute reader: no panic, no
// hang, errors wrap ErrUnreadable, a complete header has its identifiers.
func FuzzRead(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkHeader(t, data)
	})
}

func checkHeader(t *testing.T, data []byte) (Header, error) {
	h, err := Read(data)
	if err != nil && !errors.Is(err, ErrUnreadable) {
		t.Fatalf("error outside ErrUnreadable: %v", err)
	}
	if err == nil && len(h.Missing()) == 0 && (h.StudyUID == "" || h.PatientID == "") {
		t.Fatal("a complete header without its identifiers")
	}
	return h, err
}

// FuzzIntakeHeader runs the intake's path: the guard's validator, then the
// reader for what the guard lets through as clean DICOM, which must be
// readable (deflated data sets aside, which the intake refuses by name).
func FuzzIntakeHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	s := guard.New(guard.Config{Workers: 1, Limits: guard.Limits{MaxArchiveBytes: 1 << 20, MaxSpoolBytes: 1 << 20}})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, herr := checkHeader(t, data)
		rep, err := s.ScanReader(context.Background(), "IM0001.dcm", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if res := rep.Files[0]; res.DICOM && res.Worst() < guard.Medium && herr != nil && h.TransferSyntax != DeflatedTransferSyntax {
			t.Fatalf("clean DICOM by the guard, unreadable by the intake: %v", herr)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set MEDSEC_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz seed corpora")
	}
	for _, name := range []string{"FuzzRead", "FuzzIntakeHeader"} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range fuzzSeeds(t) {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// part10 builds a minimal Part 10 file: meta group (explicit little
// endian, with the transfer syntax) and a data set already encoded.
func part10(ts string, dataset []byte) []byte {
	var b bytes.Buffer
	b.Write(make([]byte, 128))
	b.WriteString("DICM")
	if len(ts)%2 == 1 {
		ts += "\x00"
	}
	b.Write([]byte{0x02, 0x00, 0x10, 0x00, 'U', 'I'})
	binary.Write(&b, binary.LittleEndian, uint16(len(ts)))
	b.WriteString(ts)
	b.Write(dataset)
	return b.Bytes()
}

// explicit encodes one element in explicit VR with byte order o; a nil
// value with length undefined writes the undefined length.
func explicit(o binary.ByteOrder, group, elem uint16, vr string, value []byte, undefined bool) []byte {
	var b bytes.Buffer
	binary.Write(&b, o, group)
	binary.Write(&b, o, elem)
	b.WriteString(vr)
	n := uint32(len(value))
	if undefined {
		n = 0xFFFFFFFF
	}
	if longVR[vr] {
		b.Write([]byte{0, 0})
		binary.Write(&b, o, n)
	} else {
		binary.Write(&b, o, uint16(n))
	}
	b.Write(value)
	return b.Bytes()
}

func implicitLE(group, elem uint16, value []byte, length uint32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, group)
	binary.Write(&b, binary.LittleEndian, elem)
	binary.Write(&b, binary.LittleEndian, length)
	b.Write(value)
	return b.Bytes()
}

func TestReadEncodings(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	ids := func(o binary.ByteOrder) []byte {
		return bytes.Join([][]byte{
			explicit(o, 0x0010, 0x0020, "LO", []byte("MRN-7 "), false),
			explicit(o, 0x0020, 0x000D, "UI", []byte("1.2.3\x00"), false),
			explicit(o, 0x0020, 0x000E, "UI", []byte("1.2.3.4\x00"), false),
			explicit(o, 0x0028, 0x0010, "US", []byte{0, 8}, false),
		}, nil)
	}
	// A private sequence written as UN of undefined length: its content is
	// implicit VR little endian whatever the file's encoding.
	unSeq := bytes.Join([][]byte{
		explicit(le, 0x0009, 0x1001, "UN", nil, true),
		implicitLE(0xFFFE, 0xE000, nil, 0xFFFFFFFF),
		implicitLE(0x0009, 0x1002, []byte("AB"), 2),
		implicitLE(0xFFFE, 0xE00D, nil, 0),
		implicitLE(0xFFFE, 0xE0DD, nil, 0),
	}, nil)
	sop := explicit(le, 0x0008, 0x0018, "UI", []byte("1.2.3.4.5\x00"), false)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"explicit little endian with a UN sequence", part10("1.2.840.10008.1.2.1", bytes.Join([][]byte{sop, unSeq, ids(le)}, nil))},
		{"explicit big endian", part10(explicitBigEndian, bytes.Join([][]byte{explicit(be, 0x0008, 0x0018, "UI", []byte("1.2.3.4.5\x00"), false), ids(be)}, nil))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Read(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if h.PatientID != "MRN-7" || h.StudyUID != "1.2.3" || h.SeriesUID != "1.2.3.4" || h.InstanceUID != "1.2.3.4.5" {
				t.Errorf("got %+v", h)
			}
		})
	}
	deep := part10("1.2.840.10008.1.2.1", bytes.Repeat(bytes.Join([][]byte{explicit(le, 0x0008, 0x1111, "SQ", nil, true),
		implicitLE(0xFFFE, 0xE000, nil, 0xFFFFFFFF)}, nil), maxNesting+2))
	if _, err := Read(deep); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: got %v", err)
	}
	huge := part10("1.2.840.10008.1.2.1", explicit(le, 0x0010, 0x0010, "UT", []byte("x"), false)[:8])
	huge = append(huge[:len(huge)-0], 0xF0, 0xFF, 0xFF, 0xFF)
	if _, err := Read(huge); !errors.Is(err, ErrUnreadable) {
		t.Errorf("huge length: got %v", err)
	}
	deflated := part10(DeflatedTransferSyntax, []byte{1, 2, 3})
	if _, err := Read(deflated); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "inflate") {
		t.Errorf("deflated: got %v", err)
	}
}
