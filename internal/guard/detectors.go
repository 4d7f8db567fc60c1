package guard

import (
	"fmt"
	"path"
	"strings"
)

// fileFacts is what the scanner knows about one file when the detectors run.
type fileFacts struct {
	path string // as reported, e.g. "cd.iso!/DICOM/IM1"
	name string // base name, for the extension
	head []byte // first sniffLen bytes at most
	kind Kind
}

// preambleFindings judges the 128-byte preamble of a DICOM Part 10 file.
// A program header there makes the file a polyglot (CVE-2019-11687).
func preambleFindings(f fileFacts) []Finding {
	pre := f.head[:preambleLen]
	what, sev := preambleContent(f.head)
	if what == "" {
		return nil
	}
	reason := fmt.Sprintf("DICOM preamble holds %s: the file is an image and a runnable program at once (CVE-2019-11687); do not open it on a workstation", what)
	switch sev {
	case Medium:
		reason = fmt.Sprintf("DICOM preamble holds %s: the file may also open as another format; zero the preamble before import", what)
	case Low:
		reason = fmt.Sprintf("DICOM preamble holds %d non-zero bytes that are no known header; zero the preamble before import", nonZero(pre))
	}
	return []Finding{{Path: f.path, Detector: DetectDICOMPreamble, Severity: sev, Reason: reason}}
}

// preambleContent names what the preamble holds; "" for all zeros or a
// TIFF header, which PS3.10 allows.
func preambleContent(head []byte) (string, Severity) {
	pre := head[:preambleLen]
	switch k := sniff(pre); {
	case nonZero(pre) == 0, k == KindTIFF:
		return "", Info
	case string(pre[:2]) == "MZ" && hasPEHeader(head):
		return "a Windows PE executable header", Critical
	case string(pre[:2]) == "MZ":
		return "a DOS/Windows executable (MZ) header", High
	case k == KindELF:
		return "an ELF executable header", Critical
	case k == KindMachO, k == KindFat:
		return "a Mach-O executable header", Critical
	case k == KindScript:
		return "a script (#!) header", High
	case k == KindShortcut:
		return "a Windows shortcut header", High
	case k == KindZip, k == KindOLE2, k == KindPDF, k == KindGzip, k == KindRAR, k == Kind7z, k == KindCAB:
		return fmt.Sprintf("a %s header", k), Medium
	}
	return "unknown bytes", Low
}

func nonZero(b []byte) int {
	n := 0
	for _, c := range b {
		if c != 0 {
			n++
		}
	}
	return n
}

// Extensions of files that run or install code when opened.
var executableExts = setOf(".exe", ".dll", ".scr", ".com", ".cpl", ".ocx", ".sys", ".drv",
	".msi", ".msp", ".mst", ".pif", ".application", ".gadget", ".jar", ".apk", ".app",
	".dmg", ".pkg", ".deb", ".rpm", ".so", ".dylib", ".appx", ".msix", ".efi", ".xll")

var scriptExts = setOf(".bat", ".cmd", ".ps1", ".psm1", ".psd1", ".vbs", ".vbe", ".js",
	".jse", ".wsf", ".wsh", ".hta", ".sh", ".bash", ".zsh", ".csh", ".ksh", ".py", ".pyw",
	".pl", ".rb", ".php", ".reg", ".scf", ".sct", ".wsc", ".chm")

var shortcutExts = setOf(".lnk", ".url", ".desktop", ".website")

var macroExts = setOf(".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".pptm", ".potm",
	".ppsm", ".ppam", ".sldm")

func setOf(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// mediaFindings flags what must never come in on import media: programs,
// scripts, autorun files and shortcuts, by name and by content.
func mediaFindings(f fileFacts) []Finding {
	if d := disguise(f); d != nil {
		return []Finding{*d}
	}
	ext := extension(f.name)
	finding := func(d Detector, reason string) []Finding {
		return []Finding{{Path: f.path, Detector: d, Severity: High, Reason: reason}}
	}
	switch {
	case strings.EqualFold(path.Base(f.name), "autorun.inf"):
		return finding(DetectAutorun, "autorun.inf starts programs when the media is inserted; media autorun is never allowed")
	case f.kind == KindShortcut || shortcutExts[ext]:
		return finding(DetectShortcut, "a shortcut on import media can launch any program; shortcuts are never imported")
	case f.kind.runnable():
		return finding(DetectExecutable, fmt.Sprintf("%s program on import media; programs are never imported from media", f.kind))
	case executableExts[ext]:
		return finding(DetectExecutable, fmt.Sprintf("%s files install or run programs; programs are never imported from media", ext))
	case f.kind == KindScript || scriptExts[ext]:
		return finding(DetectScript, "script on import media; scripts are never imported from media")
	}
	return nil
}

// disguise reports content that its extension lies about, most severe
// when a program hides behind a document or image name. An extension that
// promises nothing (".dat") cannot lie; a program under it is still an
// executable on media.
func disguise(f fileFacts) *Finding {
	ext := extension(f.name)
	if match, _ := expected(f.name, f.kind); match || executableExts[ext] || scriptExts[ext] {
		return nil
	}
	sev, what := Low, fmt.Sprintf("content is %s, not what %q promises", f.kind, ext)
	switch {
	case f.kind.runnable():
		sev, what = Critical, fmt.Sprintf("a %s program disguised as %q", f.kind, ext)
	case f.kind == KindScript, f.kind == KindShortcut:
		sev, what = High, fmt.Sprintf("a %s disguised as %q", f.kind, ext)
	case f.kind == KindZip, f.kind == KindISO, f.kind == KindRAR, f.kind == Kind7z, f.kind == KindCAB, f.kind == KindOLE2:
		sev = Medium
	}
	return &Finding{Path: f.path, Detector: DetectContentMismatch, Severity: sev, Reason: what + "; do not open it by its name"}
}
