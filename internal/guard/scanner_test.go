package guard

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/medsec/medsec/internal/guard/iso9660/iso9660test"
)

// got is a finding reduced to what a test asserts: where, which check, how bad.
type got struct {
	Path     string
	Detector Detector
	Severity Severity
}

func reduce(t *testing.T, rep *Report, root string) []got {
	t.Helper()
	var out []got
	for _, f := range rep.Findings() {
		p := strings.TrimPrefix(filepath.ToSlash(f.Path), filepath.ToSlash(root)+"/")
		out = append(out, got{p, f.Detector, f.Severity})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Detector < out[j].Detector
	})
	return out
}

func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func scanTree(t *testing.T, cfg Config, paths ...string) *Report {
	t.Helper()
	rep, err := New(cfg).Scan(context.Background(), paths...)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return rep
}

// oleDoc is an OLE2-shaped document whose directory names a VBA storage.
func oleDoc(withMacro bool) []byte {
	b := make([]byte, 4096)
	copy(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	copy(b[1024:], utf16le("Root Entry"))
	if withMacro {
		copy(b[1152:], utf16le("_VBA_PROJECT_CUR"))
	}
	return b
}

func shortcut() []byte {
	return append([]byte("L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"), make([]byte, 60)...)
}

// A patient CD as it arrives: one clean study behind a DICOMDIR, and the
// things that must never come in with it.
func TestScanMediaTree(t *testing.T) {
	pe := append(peStub(), make([]byte, 256)...)
	root := writeTree(t, map[string][]byte{
		"DICOMDIR":            dicomdir(`DICOM\ST1\SE1\IM1`, `DICOM\ST1\SE1\IM2`, `DICOM\ST1\SE1\IM3`),
		"DICOM/ST1/SE1/IM1":   cleanDICOM("1"),
		"DICOM/ST1/SE1/IM2":   cleanDICOM("2"),
		"DICOM/ST1/SE1/IM3":   part10(peStub(), tsExplicitLittle, encode(mrDataset("3"), true, binary.LittleEndian)),
		"DICOM/ST1/SE1/NOTES": []byte("radiologist notes"),
		"AUTORUN.INF":         []byte("[autorun]\nopen=viewer.exe\n"),
		"viewer.exe":          pe,
		"Start viewer.lnk":    shortcut(),
		"tools/install.bat":   []byte("@echo benign marker\n"),
		"tools/run":           []byte("#!/bin/sh\necho benign marker\n"),
		"report.docm":         zipOf(t, true, zf{"[Content_Types].xml", []byte("<Types/>")}, zf{"word/vbaProject.bin", []byte("benign")}),
		"letter.doc":          oleDoc(true),
		"plain.doc":           oleDoc(false),
		"photo.jpg":           pe,
		"scan.dcm":            zipOf(t, false, zf{"x.txt", []byte("x")}),
		"README.TXT":          []byte("Open the images with any DICOM viewer."),
		"logo.png":            []byte("\x89PNG\r\n\x1a\n rest of a benign png"),
	})
	rep := scanTree(t, Config{}, root)
	want := []got{
		{"AUTORUN.INF", DetectAutorun, High},
		{"DICOM/ST1/SE1/IM3", DetectDICOMPreamble, Critical},
		{"DICOM/ST1/SE1/NOTES", DetectDICOMStructure, Medium},
		{"Start viewer.lnk", DetectShortcut, High},
		{"letter.doc", DetectOfficeMacro, High},
		{"photo.jpg", DetectContentMismatch, Critical},
		{"report.docm", DetectOfficeMacro, High},
		{"scan.dcm", DetectContentMismatch, Medium},
		{"scan.dcm", DetectDICOMStructure, Medium},
		{"tools/install.bat", DetectScript, High},
		{"tools/run", DetectScript, High},
		{"viewer.exe", DetectExecutable, High},
	}
	if diff := cmpDiff(want, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !rep.Malicious() || rep.Summary.MaliciousFiles != 9 {
		t.Errorf("malicious files = %d, want 9", rep.Summary.MaliciousFiles)
	}
	for _, f := range rep.Files {
		rel := strings.TrimPrefix(filepath.ToSlash(f.Path), filepath.ToSlash(root)+"/")
		wantDICOM := rel == "DICOMDIR" || rel == "DICOM/ST1/SE1/IM1" || rel == "DICOM/ST1/SE1/IM2" || rel == "DICOM/ST1/SE1/IM3"
		if f.DICOM != wantDICOM {
			t.Errorf("%s: DICOM = %v, want %v", rel, f.DICOM, wantDICOM)
		}
	}
	notes := byDetector(rep.Findings(), DetectDICOMStructure)[0]
	if !strings.Contains(notes.Reason, "under a DICOM directory") {
		t.Errorf("NOTES reason %q, want it to say why the file had to be DICOM", notes.Reason)
	}
}

// A file the DICOMDIR references must be DICOM whatever its name.
func TestScanDICOMDIRReferencedFile(t *testing.T) {
	root := writeTree(t, map[string][]byte{
		"DICOMDIR":     dicomdir(`IMAGES\A0001`),
		"IMAGES/A0001": []byte("not an image at all, but referenced as one"),
		"IMAGES/A0002": []byte("not referenced, not named .dcm, not under DICOM/"),
	})
	rep := scanTree(t, Config{}, root)
	want := []got{{"IMAGES/A0001", DetectDICOMStructure, Medium}}
	if diff := cmpDiff(want, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if r := byDetector(rep.Findings(), DetectDICOMStructure); len(r) == 1 && !strings.Contains(r[0].Reason, "referenced by DICOMDIR") {
		t.Errorf("reason %q, want it to mention DICOMDIR", r[0].Reason)
	}
}

func TestScanCleanStudy(t *testing.T) {
	files := map[string][]byte{"DICOMDIR": dicomdir(`DICOM\IM1`, `DICOM\IM2`, `DICOM\IM3`, `DICOM\IM4`)}
	for _, n := range []string{"1", "2", "3", "4"} {
		files["DICOM/IM"+n] = cleanDICOM(n)
	}
	root := writeTree(t, files)
	rep := scanTree(t, Config{}, root)
	if len(rep.Findings()) != 0 || rep.Malicious() {
		t.Fatalf("findings %v, want none for a clean study", rep.Findings())
	}
	if rep.Summary.Files != 5 {
		t.Errorf("files = %d, want 5", rep.Summary.Files)
	}
	for _, f := range rep.Files {
		if !f.DICOM || f.Kind != KindDICOM || len(f.SHA256) != 64 {
			t.Errorf("%s: DICOM %v kind %s sha %q, want a hashed DICOM file", f.Path, f.DICOM, f.Kind, f.SHA256)
		}
	}
}

func TestScanISO(t *testing.T) {
	img := iso9660test.Build([]iso9660test.Entry{
		{Path: "DICOMDIR", Data: dicomdir(`DICOM\IM1`, `DICOM\IM2`)},
		{Path: "DICOM/IM1", Data: cleanDICOM("1")},
		{Path: "DICOM/IM2", Data: part10([]byte("\x7fELF\x02\x01\x01"), tsExplicitLittle, encode(mrDataset("2"), true, binary.LittleEndian))},
		{Path: "AUTORUN.INF", Data: []byte("[autorun]")},
		{Path: "STUDY.ZIP", Data: zipOf(t, true, zf{"IM9.dcm", part10([]byte("#!/bin/sh\n"), tsExplicitLittle, nil)})},
	}, iso9660test.Options{Label: "MRI"})
	root := writeTree(t, map[string][]byte{"cd.iso": img, "cut.iso": img[:33000], "truncated.iso": img[:40000]})
	rep := scanTree(t, Config{}, root)
	want := []got{
		{"cd.iso!/AUTORUN.INF", DetectAutorun, High},
		{"cd.iso!/DICOM/IM2", DetectDICOMPreamble, Critical},
		{"cd.iso!/STUDY.ZIP!/IM9.dcm", DetectDICOMPreamble, High},
		{"cut.iso", DetectArchive, Medium},
		// Directories survive the cut; every entry whose extent is gone says so.
		{"truncated.iso!/AUTORUN.INF", DetectArchive, Medium},
		{"truncated.iso!/DICOM", DetectArchive, Medium},
		{"truncated.iso!/DICOMDIR", DetectArchive, Medium},
		{"truncated.iso!/STUDY.ZIP", DetectArchive, Medium},
	}
	if diff := cmpDiff(want, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	// The same image through the import API, as a plain stream.
	rep, err := New(Config{}).ScanReader(context.Background(), "upload.iso", io.MultiReader(bytes.NewReader(img)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rep.Files); n != 7 || rep.Summary.MaliciousFiles != 3 {
		t.Errorf("stream scan: %d files, %d malicious; want 7 files, 3 malicious", n, rep.Summary.MaliciousFiles)
	}
}

// overlap rewrites a one-entry zip so two central directory records share
// the entry's data, as non-recursive zip bombs do.
func overlap(t testing.TB, z []byte) []byte {
	t.Helper()
	eocd := len(z) - 22
	cdSize := int(binary.LittleEndian.Uint32(z[eocd+12:]))
	cdOff := int(binary.LittleEndian.Uint32(z[eocd+16:]))
	cd := z[cdOff : cdOff+cdSize]
	twin := bytes.Clone(cd)
	twin[46] = 'b' // rename the second entry's first letter
	out := append(bytes.Clone(z[:cdOff]), cd...)
	out = append(out, twin...)
	end := bytes.Clone(z[eocd:])
	binary.LittleEndian.PutUint16(end[8:], 2)
	binary.LittleEndian.PutUint16(end[10:], 2)
	binary.LittleEndian.PutUint32(end[12:], uint32(2*cdSize))
	return append(out, end...)
}

func TestScanZipBombs(t *testing.T) {
	zeros := zipOf(t, true, zf{"zeros.dcm", make([]byte, 8<<20)})
	nest := zipOf(t, true, zf{"IM1", cleanDICOM("1")})
	for i := range 5 {
		nest = zipOf(t, true, zf{"level" + string(rune('0'+i)) + ".zip", nest})
	}
	var many []zf
	for i := range 30 {
		many = append(many, zf{name: "f" + string(rune('a'+i)), data: []byte("x")})
	}
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want string
	}{
		{"high ratio zero-filled entry", zeros, Limits{}, "ratio over 100:1"},
		{"nested zips", nest, Limits{}, "nested deeper than 4"},
		{"overlapping entries", overlap(t, zipOf(t, false, zf{"a.txt", bytes.Repeat([]byte("y"), 1000)})), Limits{}, "overlap"},
		{"too many entries", zipOf(t, false, many...), Limits{MaxArchiveEntries: 20}, "more than 20 entries"},
		{"over the size budget", zipOf(t, true, zf{"a", bytes.Repeat([]byte("abc"), 40000)}), Limits{MaxArchiveBytes: 100000}, "over the 100000-byte budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := New(Config{Limits: tt.lim}).ScanReader(context.Background(), "media.zip", bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			bombs := byDetector(rep.Findings(), DetectArchiveBomb)
			if len(bombs) != 1 || !strings.Contains(bombs[0].Reason, tt.want) || bombs[0].Severity != High {
				t.Fatalf("bomb findings %v, want one high finding mentioning %q", bombs, tt.want)
			}
			if rep.Summary.Bytes > int64(len(tt.data))+(1<<20) {
				t.Errorf("scan read %d bytes from a %d-byte archive, want the bomb left packed", rep.Summary.Bytes, len(tt.data))
			}
		})
	}
}

func TestScanZipContents(t *testing.T) {
	z := zipOf(t, true,
		zf{"DICOMDIR", dicomdir(`A\B`)},
		zf{"A/B", part10(peStub(), tsExplicitLittle, nil)},
		zf{"../../evil.txt", []byte("x")},
		zf{"ok.dcm", cleanDICOM("1")},
	)
	rep, err := New(Config{}).ScanReader(context.Background(), "study.zip", bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{"study.zip", DetectArchive, Medium},
		{"study.zip!/A/B", DetectDICOMPreamble, Critical},
	}
	if diff := cmp.Diff(want, reduce(t, rep, "")); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestScanSymlinksAndSpecialFiles(t *testing.T) {
	root := writeTree(t, map[string][]byte{"DICOM/IM1": cleanDICOM("1"), "a/file.txt": []byte("x")})
	links := map[string]string{
		"self":        "self",
		"dangling":    "nowhere",
		"up":          "..",
		"a/loop":      "..",
		"outside":     "/etc/hostname",
		"a/same-file": "file.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	rep := scanTree(t, Config{}, root)
	want := []got{
		{"a/loop", DetectSymlink, Medium},
		{"dangling", DetectSymlink, Low},
		{"outside", DetectSymlink, Low},
		{"self", DetectSymlink, Medium},
		{"up", DetectSymlink, Low},
	}
	if diff := cmpDiff(want, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	var files []string
	for _, f := range rep.Files {
		if len(f.Findings) == 0 {
			files = append(files, strings.TrimPrefix(filepath.ToSlash(f.Path), filepath.ToSlash(root)+"/"))
		}
	}
	if diff := cmp.Diff([]string{"DICOM/IM1", "a/file.txt", "a/same-file"}, files); diff != "" {
		t.Errorf("clean files scanned (-want +got):\n%s", diff)
	}
}

// A read error mid-file is a finding for that file; the file is not
// called clean and the rest of the scan goes on.
func TestScanReadError(t *testing.T) {
	r := io.MultiReader(bytes.NewReader(cleanDICOM("1")[:200]), iotest.ErrReader(io.ErrClosedPipe))
	rep, err := New(Config{}).ScanReader(context.Background(), "IM1.dcm", r)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Files[0]
	if len(f.Findings) != 1 || f.Findings[0].Detector != DetectUnreadable || f.SHA256 != "" || f.DICOM {
		t.Errorf("got %+v, want one unreadable finding, no digest, not DICOM", f)
	}
}

func TestScanDenyList(t *testing.T) {
	bad := []byte("benign marker standing in for a known bad file")
	deny, err := ParseDenyList(strings.NewReader("# known bad\n\n" + sha256Hex(bad) + "  # test marker\n"))
	if err != nil {
		t.Fatal(err)
	}
	root := writeTree(t, map[string][]byte{"bad.txt": bad, "good.txt": []byte("fine")})
	rep := scanTree(t, Config{DenyList: deny}, root)
	if diff := cmp.Diff([]got{{"bad.txt", DetectDenyList, Critical}}, reduce(t, rep, root)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if r := rep.Findings()[0].Reason; !strings.Contains(r, "test marker") {
		t.Errorf("reason %q, want the list's label", r)
	}
}

func TestParseDenyListErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"short", "abcd\n", "line 1: want 64 hex digits"},
		{"not hex", "# c\n" + strings.Repeat("zz", 32) + "\n", "line 2: not a hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDenyList(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	d, err := ParseDenyList(strings.NewReader(strings.ToUpper(strings.Repeat("ab", 32)) + "\n"))
	if err != nil || d.Len() != 1 {
		t.Errorf("upper-case digest: len %d err %v, want 1 nil", d.Len(), err)
	}
}

func TestScanProgress(t *testing.T) {
	root := writeTree(t, map[string][]byte{"a": []byte("1"), "b/c": []byte("22"), "b/d.dcm": cleanDICOM("1")})
	var seen []Progress
	scanTree(t, Config{Progress: func(p Progress) { seen = append(seen, p) }}, root)
	if len(seen) != 4 {
		t.Fatalf("progress called %d times, want once per file and once at the end (4)", len(seen))
	}
	last := seen[len(seen)-1]
	if last.Files != 3 || last.Found != 3 || !last.WalkDone || last.Bytes != int64(3+len(cleanDICOM("1"))) {
		t.Errorf("last progress %+v, want 3 files of 3 found, walk done, all bytes", last)
	}
}

// The import API validates a ".dcm" upload as DICOM by its name alone.
func TestScanReaderDICOMByName(t *testing.T) {
	rep, err := New(Config{}).ScanReader(context.Background(), "upload/IM1.dcm", strings.NewReader("plain text"))
	if err != nil {
		t.Fatal(err)
	}
	if f := byDetector(rep.Findings(), DetectDICOMStructure); len(f) != 1 || !strings.Contains(f[0].Reason, "named .dcm") {
		t.Errorf("findings %v, want a structure finding that says the name made it DICOM", rep.Findings())
	}
}
