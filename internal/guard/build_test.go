package guard

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"testing"
)

// Test files are built here, in the tests: no real malware, benign markers only.

// el is one data element for the test encoder. items makes it a sequence.
type el struct {
	tag       uint32
	vr        string
	value     []byte
	items     [][]el
	undefined bool // undefined length (sequences and items)
}

func str(tag uint32, vr, v string) el {
	if len(v)%2 == 1 {
		if vr == "UI" {
			v += "\x00"
		} else {
			v += " "
		}
	}
	return el{tag: tag, vr: vr, value: []byte(v)}
}

var longVRTest = map[string]bool{"OB": true, "OW": true, "SQ": true, "UN": true, "UT": true, "UC": true, "UR": true}

// encode writes elements in explicit VR (or implicit) with byte order o.
func encode(els []el, explicit bool, o binary.ByteOrder) []byte {
	var b bytes.Buffer
	for _, e := range els {
		writeTag(&b, o, e.tag)
		body := e.value
		if e.items != nil {
			body = encodeItems(e.items, e.undefined, explicit, o)
		}
		n := uint32(len(body))
		if e.undefined {
			n = undefinedLength
		}
		switch {
		case !explicit:
			binary.Write(&b, o, n)
		case longVRTest[e.vr]:
			b.WriteString(e.vr)
			b.Write([]byte{0, 0})
			binary.Write(&b, o, n)
		default:
			b.WriteString(e.vr)
			binary.Write(&b, o, uint16(n))
		}
		b.Write(body)
		if e.undefined {
			writeTag(&b, o, tagSequenceDelimiter)
			binary.Write(&b, o, uint32(0))
		}
	}
	return b.Bytes()
}

func encodeItems(items [][]el, undefined, explicit bool, o binary.ByteOrder) []byte {
	var b bytes.Buffer
	for _, it := range items {
		body := encode(it, explicit, o)
		writeTag(&b, o, tagItem)
		if undefined {
			binary.Write(&b, o, uint32(undefinedLength))
			b.Write(body)
			writeTag(&b, o, tagItemDelimitation)
			binary.Write(&b, o, uint32(0))
			continue
		}
		binary.Write(&b, o, uint32(len(body)))
		b.Write(body)
	}
	return b.Bytes()
}

func writeTag(b *bytes.Buffer, o binary.ByteOrder, tag uint32) {
	binary.Write(b, o, uint16(tag>>16))
	binary.Write(b, o, uint16(tag))
}

// part10 builds preamble + "DICM" + File Meta + data set.
func part10(preamble []byte, ts string, dataset []byte) []byte {
	meta := encode([]el{
		{tag: 0x00020001, vr: "OB", value: []byte{0, 1}},
		str(0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.4"),
		str(0x00020003, "UI", "1.2.826.0.1.3680043.10.1.1"),
		str(tagTransferSyntax, "UI", ts),
	}, true, binary.LittleEndian)
	var b bytes.Buffer
	pre := make([]byte, preambleLen)
	copy(pre, preamble)
	b.Write(pre)
	b.WriteString("DICM")
	b.Write(encode([]el{{tag: tagMetaGroupLength, vr: "UL", value: binary.LittleEndian.AppendUint32(nil, uint32(len(meta)))}}, true, binary.LittleEndian))
	b.Write(meta)
	b.Write(dataset)
	return b.Bytes()
}

// mrDataset is a small MR instance: patient, study/series/instance UIDs,
// a referenced-image sequence and 8x8 16-bit pixels.
func mrDataset(instance string) []el {
	return []el{
		str(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.4"),
		str(0x00080018, "UI", "1.2.826.0.1.3680043.10.1."+instance),
		str(0x00080060, "CS", "MR"),
		{tag: 0x00081140, vr: "SQ", undefined: true, items: [][]el{{str(0x00081150, "UI", "1.2.840.10008.5.1.4.1.1.4")}}},
		str(0x00100010, "PN", "TEST^PATIENT"),
		str(0x00100020, "LO", "PID0001"),
		str(0x0020000D, "UI", "1.2.826.0.1.3680043.10.2"),
		str(0x0020000E, "UI", "1.2.826.0.1.3680043.10.3"),
		{tag: 0x00280010, vr: "US", value: []byte{8, 0}},
		{tag: 0x00280011, vr: "US", value: []byte{8, 0}},
		{tag: tagPixelData, vr: "OW", value: make([]byte, 128)},
	}
}

// cleanDICOM is a well-formed MR instance with a zero preamble.
func cleanDICOM(instance string) []byte {
	return part10(nil, tsExplicitLittle, encode(mrDataset(instance), true, binary.LittleEndian))
}

// peStub is a benign PE-shaped header: "MZ", e_lfanew -> "PE\0\0". It
// runs nothing; it only has the shape the detectors look for.
func peStub() []byte {
	b := make([]byte, preambleLen)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	return b
}

// dicomdir builds a DICOMDIR referencing files (backslash components).
func dicomdir(refs ...string) []byte {
	var items [][]el
	for _, r := range refs {
		items = append(items, []el{str(0x00041430, "CS", "IMAGE"), str(tagReferencedFileID, "CS", r)})
	}
	ds := encode([]el{str(0x00041130, "CS", "TESTCD"), {tag: 0x00041220, vr: "SQ", items: items}}, true, binary.LittleEndian)
	return part10(nil, tsExplicitLittle, ds)
}

// zipOf builds a zip archive; deflate compresses every entry.
func zipOf(t testing.TB, deflate bool, files ...zf) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range files {
		method := zip.Store
		if deflate {
			method = zip.Deflate
		}
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(f.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type zf struct {
	name string
	data []byte
}

func deflated(b []byte) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}
