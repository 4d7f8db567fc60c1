package guard

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// FileResult is what the scan found for one file. Files inside archives
// and images have their own results, with paths like "cd.iso!/DICOM/IM1".
type FileResult struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256,omitempty"`
	Kind     Kind      `json:"kind,omitempty"`
	DICOM    bool      `json:"dicom"` // a well-formed DICOM Part 10 file
	Findings []Finding `json:"findings,omitempty"`
}

// Malicious reports whether any finding is high or critical: the file
// must not be imported.
func (r FileResult) Malicious() bool {
	for _, f := range r.Findings {
		if f.Malicious() {
			return true
		}
	}
	return false
}

// Worst is the highest severity among the findings; Info when there are none.
func (r FileResult) Worst() Severity {
	w := Info
	for _, f := range r.Findings {
		w = max(w, f.Severity)
	}
	return w
}

// Summary counts a scan.
type Summary struct {
	Files          int              `json:"files"`
	Bytes          int64            `json:"bytes"`
	Findings       map[Severity]int `json:"findings"`
	MaliciousFiles int              `json:"malicious_files"`
	Duration       time.Duration    `json:"duration_ns"`
}

// Report is the result of one scan.
type Report struct {
	Started time.Time    `json:"started"`
	Files   []FileResult `json:"files"`
	Summary Summary      `json:"summary"`
}

func (r *Report) add(res FileResult) {
	r.Files = append(r.Files, res)
	if r.Summary.Findings == nil {
		r.Summary.Findings = map[Severity]int{Info: 0, Low: 0, Medium: 0, High: 0, Critical: 0}
	}
	r.Summary.Files++
	r.Summary.Bytes += max(res.Size, 0)
	for _, f := range res.Findings {
		r.Summary.Findings[f.Severity]++
	}
	if res.Malicious() {
		r.Summary.MaliciousFiles++
	}
}

// Malicious reports whether any file must be kept out; the CLI exits 1.
func (r *Report) Malicious() bool { return r.Summary.MaliciousFiles > 0 }

// Findings lists every finding in path order.
func (r *Report) Findings() []Finding {
	var out []Finding
	for _, f := range r.Files {
		out = append(out, f.Findings...)
	}
	return out
}

// WriteText writes one line per finding, "path: detector: severity:
// reason", then a summary line.
func (r *Report) WriteText(w io.Writer) error {
	for _, f := range r.Findings() {
		if _, err := fmt.Fprintln(w, f); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	_, err := fmt.Fprintln(w, r.Summary)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// String renders the summary line.
func (s Summary) String() string {
	secs := s.Duration.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(s.Bytes) / secs / 1e6
	}
	verdict := "clean"
	if s.MaliciousFiles > 0 {
		verdict = fmt.Sprintf("MALICIOUS: %d files must not be imported", s.MaliciousFiles)
	}
	return fmt.Sprintf("scanned %d files, %d bytes in %s (%.1f MB/s); findings: critical %d, high %d, medium %d, low %d, info %d; %s",
		s.Files, s.Bytes, s.Duration.Round(time.Millisecond), rate,
		s.Findings[Critical], s.Findings[High], s.Findings[Medium], s.Findings[Low], s.Findings[Info], verdict)
}

// WriteJSON writes the whole report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
