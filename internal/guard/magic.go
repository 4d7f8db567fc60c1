package guard

import (
	"bytes"
	"encoding/binary"
	"path"
	"strings"
)

// Kind is what a file's content is by its magic bytes, whatever its name says.
type Kind string

// Content kinds the scanner tells apart.
const (
	KindUnknown   Kind = "unknown"
	KindDICOM     Kind = "dicom"
	KindPE        Kind = "windows-pe"
	KindDOS       Kind = "dos-executable"
	KindELF       Kind = "elf"
	KindMachO     Kind = "mach-o"
	KindFat       Kind = "mach-o-fat-or-java-class"
	KindScript    Kind = "script"
	KindShortcut  Kind = "windows-shortcut"
	KindOLE2      Kind = "ole2"
	KindZip       Kind = "zip"
	KindISO       Kind = "iso9660"
	KindGzip      Kind = "gzip"
	KindRAR       Kind = "rar"
	Kind7z        Kind = "7z"
	KindCAB       Kind = "cab"
	KindJPEG      Kind = "jpeg"
	KindJPEG2000  Kind = "jpeg2000"
	KindPNG       Kind = "png"
	KindGIF       Kind = "gif"
	KindTIFF      Kind = "tiff"
	KindBMP       Kind = "bmp"
	KindPDF       Kind = "pdf"
	KindXML       Kind = "xml"
	KindMPEG4     Kind = "mp4"
	KindWAV       Kind = "wav"
	KindSQLite    Kind = "sqlite"
	KindEmptyFile Kind = "empty"
)

// isoMagicOffset is where "CD001" sits in the first volume descriptor.
const isoMagicOffset = 16*2048 + 1

// sniffLen is how many leading bytes sniffing needs: enough to see an
// ISO 9660 volume descriptor and most PE headers.
const sniffLen = isoMagicOffset + 5 + 4096

type magic struct {
	off   int
	bytes string
	kind  Kind
}

// magics are checked in order; DICOM comes first so a polyglot counts as
// DICOM and its preamble is judged by the preamble detector.
var magics = []magic{
	{128, "DICM", KindDICOM},
	{0, "\x7fELF", KindELF},
	{0, "\xfe\xed\xfa\xce", KindMachO}, {0, "\xce\xfa\xed\xfe", KindMachO},
	{0, "\xfe\xed\xfa\xcf", KindMachO}, {0, "\xcf\xfa\xed\xfe", KindMachO},
	{0, "\xca\xfe\xba\xbe", KindFat}, {0, "\xca\xfe\xba\xbf", KindFat},
	{0, "\xbe\xba\xfe\xca", KindFat}, {0, "\xbf\xba\xfe\xca", KindFat},
	{0, "#!", KindScript},
	{0, "L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46", KindShortcut},
	{0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", KindOLE2},
	{0, "PK\x03\x04", KindZip}, {0, "PK\x05\x06", KindZip}, {0, "PK\x07\x08", KindZip},
	{isoMagicOffset, "CD001", KindISO},
	{0, "\x1f\x8b", KindGzip},
	{0, "Rar!\x1a\x07", KindRAR},
	{0, "7z\xbc\xaf\x27\x1c", Kind7z},
	{0, "MSCF\x00\x00\x00\x00", KindCAB},
	{0, "\xff\xd8\xff", KindJPEG},
	{0, "\x00\x00\x00\x0cjP  \r\n\x87\n", KindJPEG2000}, {0, "\xff\x4f\xff\x51", KindJPEG2000},
	{0, "\x89PNG\r\n\x1a\n", KindPNG},
	{0, "GIF87a", KindGIF}, {0, "GIF89a", KindGIF},
	{0, "II*\x00", KindTIFF}, {0, "MM\x00*", KindTIFF},
	{0, "%PDF-", KindPDF},
	{0, "<?xml", KindXML}, {0, "\xef\xbb\xbf<?xml", KindXML},
	{4, "ftyp", KindMPEG4},
	{0, "SQLite format 3\x00", KindSQLite},
}

// sniff names the content kind of a file from its first bytes.
func sniff(head []byte) Kind {
	if len(head) == 0 {
		return KindEmptyFile
	}
	for _, m := range magics {
		if len(head) >= m.off+len(m.bytes) && string(head[m.off:m.off+len(m.bytes)]) == m.bytes {
			return m.kind
		}
	}
	if bytes.HasPrefix(head, []byte("MZ")) {
		return executableKind(head)
	}
	if len(head) >= 14 && string(head[:2]) == "BM" && binary.LittleEndian.Uint32(head[2:]) > 14 {
		return KindBMP
	}
	if len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WAVE" {
		return KindWAV
	}
	return KindUnknown
}

// executableKind tells a PE from a bare DOS executable by e_lfanew.
func executableKind(head []byte) Kind {
	if hasPEHeader(head) {
		return KindPE
	}
	return KindDOS
}

// hasPEHeader reports whether an MZ header's e_lfanew points at "PE\0\0"
// within head.
func hasPEHeader(head []byte) bool {
	if len(head) < 0x40 {
		return false
	}
	lfanew := int64(binary.LittleEndian.Uint32(head[0x3c:]))
	return lfanew+4 <= int64(len(head)) && string(head[lfanew:lfanew+4]) == "PE\x00\x00"
}

// runnable reports whether a kind is a program the operating system will load.
func (k Kind) runnable() bool {
	switch k {
	case KindPE, KindDOS, KindELF, KindMachO, KindFat:
		return true
	}
	return false
}

// extKinds maps a file extension to the content kinds it may hold. An
// extension missing here promises nothing.
var extKinds = map[string][]Kind{
	".dcm": {KindDICOM}, ".dicom": {KindDICOM},
	".jpg": {KindJPEG}, ".jpeg": {KindJPEG}, ".jpe": {KindJPEG},
	".jp2": {KindJPEG2000}, ".j2k": {KindJPEG2000},
	".png": {KindPNG}, ".gif": {KindGIF}, ".tif": {KindTIFF, KindDICOM}, ".tiff": {KindTIFF, KindDICOM},
	".bmp": {KindBMP}, ".pdf": {KindPDF},
	".zip": {KindZip}, ".iso": {KindISO}, ".gz": {KindGzip}, ".tgz": {KindGzip},
	".rar": {KindRAR}, ".7z": {Kind7z}, ".cab": {KindCAB},
	".docx": {KindZip}, ".xlsx": {KindZip}, ".pptx": {KindZip},
	".docm": {KindZip}, ".xlsm": {KindZip}, ".pptm": {KindZip},
	".doc": {KindOLE2}, ".xls": {KindOLE2}, ".ppt": {KindOLE2}, ".msi": {KindOLE2},
	".exe": {KindPE, KindDOS}, ".dll": {KindPE}, ".scr": {KindPE}, ".sys": {KindPE},
	".ocx": {KindPE}, ".cpl": {KindPE}, ".lnk": {KindShortcut}, ".jar": {KindZip},
	".xml": {KindXML, KindUnknown}, ".mp4": {KindMPEG4}, ".wav": {KindWAV},
	".txt": {KindUnknown, KindEmptyFile, KindXML}, ".htm": {KindUnknown, KindXML}, ".html": {KindUnknown, KindXML},
	".inf": {KindUnknown}, ".ini": {KindUnknown}, ".csv": {KindUnknown}, ".json": {KindUnknown},
}

// extension returns the lower-case extension of name, with its dot.
func extension(name string) string {
	return strings.ToLower(path.Ext(name))
}

// expected reports whether content of kind k is what name's extension
// promises; ok is false when the extension promises nothing.
func expected(name string, k Kind) (match, ok bool) {
	kinds, ok := extKinds[extension(name)]
	if !ok {
		return true, false
	}
	if k == KindEmptyFile {
		return true, true
	}
	for _, want := range kinds {
		if k == want {
			return true, true
		}
	}
	return false, true
}
