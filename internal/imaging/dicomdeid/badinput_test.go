package dicomdeid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

// Raw encoders for hand-made broken files.

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func explicit(g, e uint16, vr string, value []byte) []byte {
	b := append(le16(g), le16(e)...)
	b = append(b, vr...)
	if longVRs[vr] {
		b = append(append(b, 0, 0), le32(uint32(len(value)))...)
	} else {
		b = append(b, le16(uint16(len(value)))...)
	}
	return append(b, value...)
}

// header writes an element header with any length, value not included.
func explicitHeader(g, e uint16, vr string, vl uint32) []byte {
	b := append(append(le16(g), le16(e)...), vr...)
	if longVRs[vr] {
		return append(append(b, 0, 0), le32(vl)...)
	}
	return append(b, le16(uint16(vl))...)
}

func implicitHeader(g, e uint16, vl uint32) []byte {
	return append(append(le16(g), le16(e)...), le32(vl)...)
}

func uidValue(s string) []byte {
	if len(s)%2 == 1 {
		s += "\x00"
	}
	return []byte(s)
}

// rawFile wraps body in a preamble and file meta information.
func rawFile(ts string, body ...[]byte) []byte {
	meta := explicit(2, 1, "OB", []byte{0, 1})
	meta = append(meta, explicit(2, 2, "UI", uidValue(dicomtest.CTImageStorage))...)
	meta = append(meta, explicit(2, 3, "UI", uidValue("1.2.3.4"))...)
	if ts != "" {
		meta = append(meta, explicit(2, 0x10, "UI", uidValue(ts))...)
	}
	f := append(make([]byte, 128), "DICM"...)
	f = append(f, explicit(2, 0, "UL", le32(uint32(len(meta))))...)
	f = append(f, meta...)
	for _, b := range body {
		f = append(f, b...)
	}
	return f
}

var (
	explicitTS = dicomtest.ExplicitVRLittleEndian
	implicitTS = dicomtest.ImplicitVRLittleEndian
	patientID  = explicit(0x10, 0x20, "LO", []byte("ID-0001 "))
	seqDelim   = implicitHeader(0xFFFE, 0xE0DD, 0)
	itemDelim  = implicitHeader(0xFFFE, 0xE00D, 0)
)

// nested builds depth undefined-length sequences inside each other.
func nested(depth int) []byte {
	var b []byte
	for range depth {
		b = append(b, explicitHeader(0x0008, 0x1140, "SQ", undefinedLength)...)
		b = append(b, implicitHeader(0xFFFE, 0xE000, undefinedLength)...)
	}
	for range depth {
		b = append(b, itemDelim...)
		b = append(b, seqDelim...)
	}
	return b
}

func deidErr(t *testing.T, opts Options, data []byte) error {
	t.Helper()
	var out bytes.Buffer
	_, err := newDeid(t, opts).File(context.Background(), bytes.NewReader(data), &out)
	if err != nil && out.Len() != 0 {
		t.Errorf("failed file wrote %d bytes", out.Len())
	}
	return err
}

func TestBadInput(t *testing.T) {
	good := generate(t, dicomtest.Options{Seed: 21})[0].Data
	for _, tc := range []struct {
		name string
		data []byte
		opts Options
		want error
	}{
		{"empty", nil, Options{}, ErrNotDICOM},
		{"text", []byte("hello, this is not an image"), Options{}, ErrNotDICOM},
		{"zeros", make([]byte, 500), Options{}, ErrNotDICOM},
		{"no meta group length", append(append(make([]byte, 128), "DICM"...), explicit(2, 1, "OB", []byte{0, 1})...), Options{}, ErrMalformed},
		{"no transfer syntax", rawFile("", patientID), Options{}, ErrMalformed},
		{"deflated", rawFile(deflatedTS, patientID), Options{}, ErrUnsupported},
		{"big endian", rawFile(bigEndianTS, patientID), Options{}, ErrUnsupported},
		{"unknown transfer syntax", rawFile("1.2.3.4.5", patientID), Options{}, ErrUnsupported},
		{"huge explicit length", rawFile(explicitTS, explicitHeader(0x7FE0, 0x0010, "OB", 0xFFFFFFF0), []byte{1, 2}), Options{}, ErrMalformed},
		{"huge string length", rawFile(explicitTS, explicitHeader(0x0008, 0x1030, "UT", 0xFFFFFFF0)), Options{}, ErrMalformed},
		{"huge implicit length", rawFile(implicitTS, implicitHeader(0x0010, 0x0010, 0xFFFFFFF0), []byte("Doe")), Options{}, ErrMalformed},
		{"short length FFFF", rawFile(explicitTS, explicitHeader(0x0010, 0x0010, "PN", 0xFFFF)), Options{}, ErrMalformed},
		{"undefined length text", rawFile(explicitTS, explicitHeader(0x0008, 0x1030, "UN", undefinedLength), []byte("abc")), Options{}, ErrMalformed},
		{"unknown VR", rawFile(explicitTS, explicit(0x0010, 0x0010, "ZZ", []byte("Doe "))), Options{}, ErrMalformed},
		{"VR the library misreads", rawFile(explicitTS, explicit(0x0010, 0x0010, "OV", make([]byte, 8))), Options{}, ErrUnsupported},
		{"odd OW", rawFile(explicitTS, explicit(0x0028, 0x1201, "OW", []byte{1, 2, 3})), Options{}, ErrMalformed},
		{"odd US", rawFile(explicitTS, explicit(0x0028, 0x0010, "US", []byte{1, 2, 3})), Options{}, ErrMalformed},
		{"trailing bytes", rawFile(explicitTS, patientID, []byte{1, 2, 3}), Options{}, ErrMalformed},
		{"charset as a sequence", rawFile(explicitTS, explicitHeader(0x0008, 0x0005, "SQ", 0)), Options{}, ErrMalformed},
		{"charset as a number", rawFile(explicitTS, explicit(0x0008, 0x0005, "US", []byte{1, 0})), Options{}, ErrMalformed},
		{"non-item in defined-length sequence", rawFile(explicitTS, explicit(0x0008, 0x1140, "SQ", patientID)), Options{}, ErrMalformed},
		{"item outside a sequence", rawFile(explicitTS, implicitHeader(0xFFFE, 0xE000, 0)), Options{}, ErrMalformed},
		{"sequence without end", rawFile(explicitTS, explicitHeader(0x0008, 0x1140, "SQ", undefinedLength)), Options{}, ErrMalformed},
		{"delimiter with a length", rawFile(explicitTS, explicitHeader(0x0008, 0x1140, "SQ", undefinedLength), implicitHeader(0xFFFE, 0xE0DD, 4)), Options{}, ErrMalformed},
		{"item past its sequence", rawFile(explicitTS, explicitHeader(0x0008, 0x1140, "SQ", 8), implicitHeader(0xFFFE, 0xE000, 100)), Options{}, ErrMalformed},
		{"fragment of undefined length", rawFile(explicitTS, explicitHeader(0x7FE0, 0x0010, "OB", undefinedLength), implicitHeader(0xFFFE, 0xE000, undefinedLength)), Options{}, ErrMalformed},
		{"odd native pixel data", rawFile(explicitTS, explicit(0x7FE0, 0x0010, "OB", []byte{1, 2, 3})), Options{}, ErrMalformed},
		{"deep nesting", rawFile(explicitTS, nested(100000)), Options{}, ErrLimit},
		{"nesting over the option", rawFile(explicitTS, nested(9)), Options{MaxDepth: 8}, ErrLimit},
		{"too many elements", good, Options{MaxElements: 10}, ErrLimit},
		{"too large", good, Options{MaxFileSize: 1000}, ErrLimit},
		{"unknown-VR sequence in a defined item", rawFile(implicitTS,
			implicitHeader(0x0008, 0x1140, 8+8+8), implicitHeader(0xFFFE, 0xE000, 16),
			implicitHeader(0x0009, 0x1010, undefinedLength), seqDelim), Options{}, ErrUnsupported},
		{"burned in", generate(t, dicomtest.Options{Seed: 1, BurnedInAnnotation: true})[0].Data, Options{}, ErrBurnedInAnnotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := deidErr(t, tc.opts, tc.data); !errors.Is(err, tc.want) {
				t.Errorf("got error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestHugeLengthBoundedMemory: a file declaring a 4 GiB value must be
// refused without allocating anything near that.
func TestHugeLengthBoundedMemory(t *testing.T) {
	data := rawFile(implicitTS, implicitHeader(0x0010, 0x0010, 0xFFFFFFF0), make([]byte, 64))
	d := newDeid(t, Options{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := d.File(context.Background(), bytes.NewReader(data), io.Discard)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("got error %v, want ErrMalformed", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("allocated %d bytes for a %d-byte file, want under 1 MiB", got, len(data))
	}
}

// TestTruncatedFiles cuts a valid file at every length: each prefix is
// either refused with one of the package's errors or, when the cut falls
// between elements, de-identified into valid DICOM. Nothing panics.
func TestTruncatedFiles(t *testing.T) {
	good := generate(t, dicomtest.Options{Seed: 22, Rows: 2, Columns: 2})[0].Data
	d := newDeid(t, Options{})
	for n := range len(good) {
		var out bytes.Buffer
		_, err := d.File(context.Background(), bytes.NewReader(good[:n]), &out)
		switch {
		case err == nil:
			parseOutput(t, out.Bytes())
		case !errors.Is(err, ErrNotDICOM) && !errors.Is(err, ErrMalformed):
			t.Fatalf("prefix of %d bytes: got error %v, want ErrNotDICOM or ErrMalformed", n, err)
		}
	}
}

// TestUnknownVRSequenceDropped: an undefined-length private sequence in an
// implicit VR file (which the library would read as a 4 GiB byte string) is
// cut out before parsing and reported as removed.
func TestUnknownVRSequenceDropped(t *testing.T) {
	private := append(implicitHeader(0x0009, 0x1010, undefinedLength),
		append(implicitHeader(0xFFFE, 0xE000, undefinedLength),
			append(implicitHeader(0x0009, 0x1011, 4), append([]byte("Doe "), append(itemDelim, seqDelim...)...)...)...)...)
	data := rawFile(implicitTS, implicitHeader(0x0008, 0x0016, 26), uidValue(dicomtest.CTImageStorage),
		private, implicitHeader(0x0010, 0x0020, 8), []byte("ID-0001 "))
	rep, ds, _ := run(t, newDeid(t, Options{}), data)
	for _, e := range ds.Elements {
		if e.Tag.Group == 0x0009 {
			t.Errorf("private element %s left", e.Tag)
		}
	}
	found := false
	for _, c := range rep.Removed() {
		found = found || c.Tag == (Tag{0x0009, 0x1010})
	}
	if !found {
		t.Error("report does not list the dropped private sequence")
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	good := generate(t, dicomtest.Options{Seed: 1})[0].Data
	if _, err := newDeid(t, Options{}).File(ctx, bytes.NewReader(good), io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want context.Canceled", err)
	}
}
