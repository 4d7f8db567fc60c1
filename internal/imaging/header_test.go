package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

func TestReadHeader(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicit=%v", implicit), func(t *testing.T) {
			in := generated(t, dicomtest.Options{Seed: 7, Implicit: implicit, Override: []dicomtest.Patient{{ID: "MRN-100000"}}})
			h, err := readHeader(in.Data)
			if err != nil {
				t.Fatal(err)
			}
			want := header{patientID: "MRN-100000", study: in.StudyInstanceUID, series: in.SeriesInstanceUID, instance: in.SOPInstanceUID,
				class: in.SOPClassUID, modality: in.Modality, studyDate: in.StudyDate}
			got := h
			got.studyTime, got.description, got.mediaClass, got.syntax = "", "", "", ""
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if h.directory() || len(h.missing()) != 0 {
				t.Errorf("an image read as directory=%v, missing %v", h.directory(), h.missing())
			}
			if h.effective().Format("20060102") != in.StudyDate {
				t.Errorf("effective %s, want the study date %s", h.effective(), in.StudyDate)
			}
		})
	}
}

func TestReadHeaderBad(t *testing.T) {
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
			h, err := readHeader(tt.data)
			if err == nil && len(h.missing()) == 0 {
				t.Errorf("read a complete header from %s input: %+v", tt.name, h)
			}
			if err != nil && !errors.Is(err, errHeader) {
				t.Errorf("got %v, want errHeader", err)
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
		if got := (header{studyDate: tt.date, studyTime: tt.tm}).effective(); !got.Equal(tt.want) {
			t.Errorf("%q %q: got %s, want %s", tt.date, tt.tm, got, tt.want)
		}
	}
}

func TestZeroPreamble(t *testing.T) {
	poly := generated(t, dicomtest.Options{Seed: 9, Preamble: []byte("MZ\x90\x00")}).Data
	zeroPreamble(poly)
	if !bytes.Equal(poly[:128], make([]byte, 128)) || string(poly[128:132]) != "DICM" {
		t.Error("preamble not zeroed")
	}
	notDICOM := []byte("MZ" + string(make([]byte, 200)))
	zeroPreamble(notDICOM)
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

// FuzzIntakeHeader feeds any bytes to the attribute reader, and to the
// intake's path (the guard's validator, then the reader for what it lets
// through as clean DICOM): no panic, no hang, errors wrap errHeader.
func FuzzIntakeHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	s := guard.New(guard.Config{Workers: 1, Limits: guard.Limits{MaxArchiveBytes: 1 << 20, MaxSpoolBytes: 1 << 20}})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, herr := readHeader(data)
		if herr != nil && !errors.Is(herr, errHeader) {
			t.Fatalf("error outside errHeader: %v", herr)
		}
		if herr == nil && len(h.missing()) == 0 && (h.study == "" || h.patientID == "") {
			t.Fatal("a complete header without its identifiers")
		}
		rep, err := s.ScanReader(context.Background(), "IM0001.dcm", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if res := rep.Files[0]; res.DICOM && !blocking(res.Findings) && herr != nil && h.syntax != deflatedTransferSyntax {
			t.Fatalf("clean DICOM by the guard, unreadable by the intake: %v", herr)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MEDSEC_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set MEDSEC_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz seed corpora")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzIntakeHeader")
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
