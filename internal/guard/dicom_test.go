package guard

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
)

var testDICOMLimits = dicomLimits{maxDepth: 16, maxRefs: 100, maxInflated: 1 << 20}

func nested(depth int) el {
	e := str(0x00100010, "PN", "LEAF")
	for range depth {
		e = el{tag: 0x00081140, vr: "SQ", undefined: depth%2 == 0, items: [][]el{{e}}}
	}
	return e
}

func TestValidateDICOM(t *testing.T) {
	le := binary.LittleEndian
	clean := cleanDICOM("1")
	huge := part10(nil, tsExplicitLittle, append(encode([]el{str(0x00080060, "CS", "MR")}, true, le),
		0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF))
	noTS := append(append(make([]byte, 128), "DICM"...), encode([]el{
		{tag: tagMetaGroupLength, vr: "UL", value: le.AppendUint32(nil, 14)},
		str(0x00020002, "UI", "1.2.3"),
	}, true, le)...)
	badMetaLen := bytes.Clone(clean)
	le.PutUint32(badMetaLen[140:], 9999999)
	encapsulated := part10(nil, "1.2.840.10008.1.2.4.50", append(encode([]el{str(0x00080060, "CS", "MR")}, true, le),
		encodeFragments([]byte{1, 2, 3, 4}, []byte{0xff, 0xd8, 0xff, 0xd9})...))
	unknownVR := part10(nil, tsExplicitLittle, []byte{0x08, 0x00, 0x60, 0x00, 'Z', 'Z', 2, 0, 'M', 'R'})
	// An undefined-length UN holds implicit VR; encode its item implicitly.
	unSequence := part10(nil, tsExplicitLittle, append([]byte{0x29, 0x00, 0x10, 0x10, 'U', 'N', 0, 0, 0xff, 0xff, 0xff, 0xff},
		encodeItems([][]el{{str(0x00100010, "", "X")}}, true, false, le)...))
	unSequence = append(unSequence, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0)

	tests := []struct {
		name, file   string
		data         []byte
		wantProblem  string // substring; "" for well formed
		wantPrefix   bool
		wantSevere   bool
		wantBomb     bool
		wantTransfer string
	}{
		{name: "clean explicit little", data: clean, wantPrefix: true, wantTransfer: tsExplicitLittle},
		{name: "implicit little", data: part10(nil, tsImplicitLittle, encode(mrDataset("2"), false, le)), wantPrefix: true, wantTransfer: tsImplicitLittle},
		{name: "explicit big", data: part10(nil, tsExplicitBig, encode(mrDataset("3"), true, binary.BigEndian)), wantPrefix: true, wantTransfer: tsExplicitBig},
		{name: "deflated", data: part10(nil, tsDeflated, deflated(encode(mrDataset("4"), true, le))), wantPrefix: true, wantTransfer: tsDeflated},
		{name: "deflate bomb", data: part10(nil, tsDeflated, deflated(encode([]el{{tag: tagPixelData, vr: "OB", value: make([]byte, 4<<20)}}, true, le))),
			wantPrefix: true, wantProblem: "inflates past", wantBomb: true, wantTransfer: tsDeflated},
		{name: "corrupt deflate", data: part10(nil, tsDeflated, []byte{0xff, 0xff, 0xff, 0xff}), wantPrefix: true, wantProblem: "corrupt", wantTransfer: tsDeflated},
		{name: "encapsulated pixel data", data: encapsulated, wantPrefix: true, wantTransfer: "1.2.840.10008.1.2.4.50"},
		{name: "UN of undefined length", data: unSequence, wantPrefix: true, wantTransfer: tsExplicitLittle},
		{name: "nested 15 levels", data: part10(nil, tsExplicitLittle, encode([]el{nested(15)}, true, le)), wantPrefix: true, wantTransfer: tsExplicitLittle},
		{name: "nested 17 levels", data: part10(nil, tsExplicitLittle, encode([]el{nested(17)}, true, le)), wantPrefix: true,
			wantProblem: "nested deeper than 16", wantSevere: true, wantTransfer: tsExplicitLittle},
		{name: "huge declared length", data: huge, wantPrefix: true, wantProblem: "declares 4294967280 bytes", wantTransfer: tsExplicitLittle},
		{name: "truncated", data: clean[:len(clean)-20], wantPrefix: true, wantProblem: "remain", wantTransfer: tsExplicitLittle},
		{name: "short file", data: clean[:100], wantProblem: "truncated"},
		{name: "no DICM", data: make([]byte, 300), wantProblem: "no DICM prefix"},
		{name: "meta without transfer syntax", data: noTS, wantPrefix: true, wantProblem: "lacks the Transfer Syntax"},
		{name: "meta group length past file", data: badMetaLen, wantPrefix: true, wantProblem: "group length 9999999"},
		{name: "unknown VR", data: unknownVR, wantPrefix: true, wantProblem: `unknown VR "ZZ"`, wantTransfer: tsExplicitLittle},
		{name: "bad transfer syntax UID", data: part10(nil, "1.2.abc", nil), wantPrefix: true, wantProblem: "not a valid UID", wantTransfer: "1.2.abc"},
		{name: "meta element after the group", data: part10(nil, tsExplicitLittle, encode([]el{str(0x00020016, "AE", "X")}, true, le)),
			wantPrefix: true, wantProblem: "outside the File Meta group", wantTransfer: tsExplicitLittle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validateDICOM(bytes.NewReader(tt.data), int64(len(tt.data)), testDICOMLimits)
			if err != nil {
				t.Fatalf("validateDICOM: unexpected I/O error %v", err)
			}
			if tt.wantProblem == "" && got.problem != "" || !strings.Contains(got.problem, tt.wantProblem) {
				t.Errorf("problem = %q, want it to contain %q", got.problem, tt.wantProblem)
			}
			if got.hasPrefix != tt.wantPrefix || got.severe != tt.wantSevere || got.bomb != tt.wantBomb || got.transferSyntax != tt.wantTransfer {
				t.Errorf("got prefix %v severe %v bomb %v ts %q, want %v %v %v %q", got.hasPrefix, got.severe, got.bomb, got.transferSyntax,
					tt.wantPrefix, tt.wantSevere, tt.wantBomb, tt.wantTransfer)
			}
		})
	}
}

func encodeFragments(frags ...[]byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xe0, 0x7f, 0x10, 0x00, 'O', 'B', 0, 0, 0xff, 0xff, 0xff, 0xff})
	b.Write(encodeItems([][]el{nil}, false, true, binary.LittleEndian)) // empty basic offset table
	for _, f := range frags {
		b.Write([]byte{0xfe, 0xff, 0x00, 0xe0})
		binary.Write(&b, binary.LittleEndian, uint32(len(f)))
		b.Write(f)
	}
	b.Write([]byte{0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0})
	return b.Bytes()
}

// A declared length of 4 GiB in a stream of unknown size must be skipped
// by reading, never allocated.
func TestValidateDICOMHugeLengthDoesNotAllocate(t *testing.T) {
	data := part10(nil, tsExplicitLittle, []byte{0xe0, 0x7f, 0x10, 0x00, 'O', 'B', 0, 0, 0xfe, 0xff, 0xff, 0xff})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := validateDICOM(bytes.NewReader(data), -1, testDICOMLimits)
	runtime.ReadMemStats(&after)
	if err != nil || !strings.Contains(res.problem, "runs past the end") {
		t.Errorf("got problem %q, err %v; want a truncation problem", res.problem, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("validating allocated %d bytes, want under 1 MiB", grew)
	}
}

func TestDICOMDIRReferences(t *testing.T) {
	dir := dicomdir(`DICOM\ST1\SE1\IM1`, `DICOM\ST1\SE1\IM2 `, `..\..\ETC\PASSWD`)
	got, err := validateDICOM(bytes.NewReader(dir), int64(len(dir)), testDICOMLimits)
	if err != nil || got.problem != "" {
		t.Fatalf("validate DICOMDIR: problem %q, err %v", got.problem, err)
	}
	want := []string{"DICOM/ST1/SE1/IM1", "DICOM/ST1/SE1/IM2"}
	if strings.Join(got.referenced, ",") != strings.Join(want, ",") {
		t.Errorf("referenced = %q, want %q (the escaping one dropped)", got.referenced, want)
	}
}

func TestPreambleFindings(t *testing.T) {
	machO := func(m string) []byte { return []byte(m) }
	tests := []struct {
		name     string
		preamble []byte
		want     Severity // -1: no finding
		reason   string
	}{
		{"zero", nil, -1, ""},
		{"TIFF little endian", []byte("II*\x00\x08\x00\x00\x00"), -1, ""},
		{"TIFF big endian", []byte("MM\x00*\x00\x00\x00\x08"), -1, ""},
		{"PE", peStub(), Critical, "Windows PE"},
		{"MZ without PE header", []byte("MZ\x90\x00"), High, "MZ"},
		{"ELF", []byte("\x7fELF\x02\x01\x01"), Critical, "ELF"},
		{"Mach-O 32 big", machO("\xfe\xed\xfa\xce"), Critical, "Mach-O"},
		{"Mach-O 32 little", machO("\xce\xfa\xed\xfe"), Critical, "Mach-O"},
		{"Mach-O 64 big", machO("\xfe\xed\xfa\xcf"), Critical, "Mach-O"},
		{"Mach-O 64 little", machO("\xcf\xfa\xed\xfe"), Critical, "Mach-O"},
		{"Mach-O fat", machO("\xca\xfe\xba\xbe"), Critical, "Mach-O"},
		{"shebang", []byte("#!/bin/sh\necho benign marker\n"), High, "script"},
		{"zip header", []byte("PK\x03\x04\x14\x00"), Medium, "a zip header"},
		{"vendor text", []byte("SOME VENDOR"), Low, "non-zero bytes"},
	}
	s := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := part10(tt.preamble, tsExplicitLittle, encode(mrDataset("9"), true, binary.LittleEndian))
			rep, err := s.ScanReader(context.Background(), "IM000001", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			res := rep.Files[0]
			if !res.DICOM {
				t.Errorf("DICOM = false, want a well-formed DICOM file; findings %v", res.Findings)
			}
			got := byDetector(res.Findings, DetectDICOMPreamble)
			if tt.want < 0 {
				if len(got) != 0 {
					t.Errorf("got findings %v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != tt.want || !strings.Contains(got[0].Reason, tt.reason) {
				t.Fatalf("got %v, want one %s finding mentioning %q", got, tt.want, tt.reason)
			}
			if got[0].SHA256 != res.SHA256 || len(res.SHA256) != 64 {
				t.Errorf("finding SHA256 %q, file SHA256 %q; want the file's digest on the finding", got[0].SHA256, res.SHA256)
			}
		})
	}
}

func byDetector(fs []Finding, d Detector) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Detector == d {
			out = append(out, f)
		}
	}
	return out
}
