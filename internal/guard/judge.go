package guard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
)

// judge turns what one read learned into findings.
func (s *Scanner) judge(it item, p pass) []Finding {
	var out []Finding
	if p.readErr != nil {
		out = append(out, s.readFailure(it, p))
	}
	facts := fileFacts{path: it.path, name: it.name, head: p.head, kind: p.kind}
	if p.dicom != nil {
		out = append(out, dicomFindings(it, facts, *p.dicom)...)
	}
	out = append(out, mediaFindings(facts)...)
	if p.macro {
		out = append(out, Finding{Path: it.path, Detector: DetectOfficeMacro, Severity: High,
			Reason: "Office document with a VBA macro project; macros run code when the document is opened"})
	}
	if p.readErr == nil {
		out = append(out, s.denied(it.path, p.sum)...)
	}
	return append(out, s.clamFindings(it.path, p)...)
}

func (s *Scanner) readFailure(it item, p pass) Finding {
	switch {
	case errors.Is(p.readErr, errBudget):
		return bombFinding(it.path, fmt.Sprintf("archive content inflates past the %d-byte budget", s.lim.MaxArchiveBytes))
	case errors.Is(p.readErr, context.Canceled), errors.Is(p.readErr, context.DeadlineExceeded):
		return Finding{Path: it.path, Detector: DetectUnreadable, Severity: Medium, Reason: "scan stopped before this file was read to its end"}
	}
	return Finding{Path: it.path, Detector: DetectUnreadable, Severity: Medium,
		Reason: fmt.Sprintf("read failed after %d bytes (%s); the file was not fully scanned", p.n, errReason(p.readErr))}
}

func unreadable(path string, err error) Finding {
	return Finding{Path: path, Detector: DetectUnreadable, Severity: Medium,
		Reason: fmt.Sprintf("cannot read (%s); the file was not scanned", errReason(err))}
}

func bombFinding(path, why string) Finding {
	return Finding{Path: path, Detector: DetectArchiveBomb, Severity: High,
		Reason: why + "; treated as a decompression bomb and not unpacked further"}
}

// dicomFindings judges the preamble and the structure of a file that is,
// or must be, DICOM Part 10.
func dicomFindings(it item, facts fileFacts, d dicomResult) []Finding {
	var out []Finding
	if d.hasPrefix {
		out = preambleFindings(facts)
	}
	switch {
	case d.problem == "":
	case d.bomb:
		out = append(out, bombFinding(it.path, "deflated DICOM data set "+d.problem))
	default:
		why := ""
		if it.why != "" && !d.hasPrefix {
			why = " (expected DICOM: " + it.why + ")"
		}
		sev := Medium
		if d.severe {
			sev = High
		}
		out = append(out, Finding{Path: it.path, Detector: DetectDICOMStructure, Severity: sev,
			Reason: "malformed DICOM Part 10 file" + why + ": " + d.problem + "; it cannot be imported as an image"})
	}
	return out
}

func (s *Scanner) denied(path string, sum [32]byte) []Finding {
	label, ok := s.cfg.DenyList.lookup(sum)
	if !ok {
		return nil
	}
	reason := "SHA-256 is on the deny list of known malicious files"
	if label != "" {
		reason += " (" + label + ")"
	}
	return []Finding{{Path: path, Detector: DetectDenyList, Severity: Critical, Reason: reason}}
}

func (s *Scanner) clamFindings(path string, p pass) []Finding {
	if s.cfg.Clamd == nil {
		return nil
	}
	switch {
	case p.clamErr != nil:
		return []Finding{{Path: path, Detector: DetectClamAV, Severity: Medium,
			Reason: fmt.Sprintf("ClamAV could not scan this file (%s); medsec's own detectors still ran", errReason(p.clamErr))}}
	case p.clam.Infected:
		return []Finding{{Path: path, Detector: DetectClamAV, Severity: Critical,
			Reason: fmt.Sprintf("ClamAV found %s", p.clam.Signature)}}
	case p.clam.Truncated:
		return []Finding{{Path: path, Detector: DetectClamAV, Severity: Low,
			Reason: fmt.Sprintf("ClamAV scanned only the first %d bytes (its stream limit)", p.clam.Scanned)}}
	}
	return nil
}

// vbaMarkers are OLE2 directory entry names, in UTF-16LE, of the storages
// that hold VBA macros in Word, Excel and PowerPoint binary documents.
var vbaMarkers = [][]byte{utf16le("_VBA_PROJECT"), utf16le("Macros"), utf16le("VBA\x00")}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	return b
}

// markerWriter looks for byte markers across the writes of a stream.
type markerWriter struct {
	markers [][]byte
	carry   []byte
	keep    int
	found   bool
}

func newMarkerWriter(markers ...[]byte) *markerWriter {
	keep := 0
	for _, m := range markers {
		keep = max(keep, len(m)-1)
	}
	return &markerWriter{markers: markers, keep: keep}
}

func (m *markerWriter) Write(b []byte) (int, error) {
	if m.found {
		return len(b), nil
	}
	window := append(m.carry, b...)
	for _, mk := range m.markers {
		if bytes.Contains(window, mk) {
			m.found = true
			return len(b), nil
		}
	}
	m.carry = append(m.carry[:0], window[max(0, len(window)-m.keep):]...)
	return len(b), nil
}

// whyDICOM says why a file on media must be DICOM, or "" when nothing
// but its content could say so. rel is its slash path within the media.
func whyDICOM(rel string, refs map[string]bool) string {
	upper := strings.ToUpper(rel)
	switch {
	case refs[upper]:
		return "referenced by DICOMDIR"
	case path.Base(upper) == "DICOMDIR":
		return "a DICOMDIR"
	case extension(rel) == ".dcm" || extension(rel) == ".dicom":
		return "named " + extension(rel)
	}
	for _, dir := range strings.Split(path.Dir(upper), "/") {
		if dir == "DICOM" {
			return "under a DICOM directory"
		}
	}
	return ""
}
