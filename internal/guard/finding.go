package guard

import (
	"fmt"
	"strings"
)

// Severity orders findings. High and Critical make a file malicious.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the severity's name, so JSON reports read "high".
func (s Severity) MarshalText() ([]byte, error) {
	if s < Info || s > Critical {
		return nil, fmt.Errorf("marshal severity %d: out of range", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads "info", "low", "medium", "high" or "critical".
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("parse severity %q: want one of %s", name, strings.Join(severityNames[:], ", "))
}

// Detector names the check that raised a finding.
type Detector string

// The detectors. Their names appear in reports and audit records, so they
// never change once shipped.
const (
	DetectDICOMStructure  Detector = "dicom-structure"
	DetectDICOMPreamble   Detector = "dicom-preamble"
	DetectExecutable      Detector = "executable"
	DetectScript          Detector = "script"
	DetectAutorun         Detector = "autorun"
	DetectShortcut        Detector = "shortcut"
	DetectOfficeMacro     Detector = "office-macro"
	DetectContentMismatch Detector = "content-mismatch"
	DetectArchiveBomb     Detector = "archive-bomb"
	DetectArchive         Detector = "archive"
	DetectDenyList        Detector = "deny-list"
	DetectClamAV          Detector = "clamav"
	DetectUnreadable      Detector = "unreadable"
	DetectSymlink         Detector = "symlink"
	DetectMedia           Detector = "media"
)

// Finding is one reason a file must be looked at, as a value that goes
// into reports, quarantine records and the audit log unchanged.
type Finding struct {
	Path     string   `json:"path"`
	Detector Detector `json:"detector"`
	Severity Severity `json:"severity"`
	Reason   string   `json:"reason"`
	SHA256   string   `json:"sha256,omitempty"`
}

// Malicious reports whether the finding alone keeps its file out.
func (f Finding) Malicious() bool { return f.Severity >= High }

// String renders the finding as the report line "path: detector: severity: reason".
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", f.Path, f.Detector, f.Severity, f.Reason)
}
