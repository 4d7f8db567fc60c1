package text

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// A note from the annotated corpus: its text with the markup stripped and
// the gold spans.
type goldNote struct {
	id, file string
	text     string
	gold     []Finding
}

// loadCorpus reads every testdata/notes/*.txt file. heldout.txt is kept
// apart from the rest.
func loadCorpus(t testing.TB) (dev, heldout []goldNote) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "notes", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		notes, err := parseNotes(filepath.Base(f), string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if filepath.Base(f) == "heldout.txt" {
			heldout = append(heldout, notes...)
		} else {
			dev = append(dev, notes...)
		}
	}
	return dev, heldout
}

// parseNotes splits a corpus file at "=== id" headers and strips the
// {{KIND:text}} markup.
func parseNotes(file, src string) ([]goldNote, error) {
	var notes []goldNote
	for _, chunk := range strings.Split(src, "\n=== ")[0:] {
		chunk = strings.TrimPrefix(chunk, "=== ")
		header, body, _ := strings.Cut(chunk, "\n")
		if strings.TrimSpace(header) == "" {
			continue
		}
		n, err := parseMarkup(strings.TrimRight(body, "\n"))
		if err != nil {
			return nil, fmt.Errorf("note %s: %w", header, err)
		}
		n.id, n.file = strings.Fields(header)[0], file
		notes = append(notes, n)
	}
	return notes, nil
}

func parseMarkup(body string) (goldNote, error) {
	var b strings.Builder
	var n goldNote
	for {
		i := strings.Index(body, "{{")
		if i < 0 {
			b.WriteString(body)
			break
		}
		b.WriteString(body[:i])
		j := strings.Index(body[i:], "}}")
		if j < 0 {
			return n, fmt.Errorf("unclosed markup at %q", body[i:min(len(body), i+30)])
		}
		kind, val, ok := strings.Cut(body[i+2:i+j], ":")
		if !ok || !validKind(Kind(kind)) || val == "" {
			return n, fmt.Errorf("bad markup %q", body[i:i+j+2])
		}
		start := b.Len()
		b.WriteString(val)
		n.gold = append(n.gold, Finding{Kind: Kind(kind), Start: start, End: b.Len(), Text: val})
		body = body[i+j+2:]
	}
	n.text = b.String()
	return n, nil
}

func validKind(k Kind) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// score counts, per kind, gold spans found and findings that hit a gold
// span. A gold span is found when a finding of the same kind overlaps it.
type score struct {
	gold, found      map[Kind]int // recall
	findings, inGold map[Kind]int // precision
}

func newScore() *score {
	return &score{gold: map[Kind]int{}, found: map[Kind]int{}, findings: map[Kind]int{}, inGold: map[Kind]int{}}
}

func (s *score) add(n goldNote, got []Finding) (misses, falses []string) {
	for _, g := range n.gold {
		s.gold[g.Kind]++
		if overlapsKind(got, g) {
			s.found[g.Kind]++
		} else {
			misses = append(misses, fmt.Sprintf("%s miss %s %q", n.id, g.Kind, g.Text))
		}
	}
	for _, f := range got {
		s.findings[f.Kind]++
		if overlapsKind(n.gold, f) {
			s.inGold[f.Kind]++
		} else {
			falses = append(falses, fmt.Sprintf("%s false %s %q (%.2f)", n.id, f.Kind, f.Text, f.Confidence))
		}
	}
	return misses, falses
}

func overlapsKind(fs []Finding, g Finding) bool {
	for _, f := range fs {
		if f.Kind == g.Kind && f.Start < g.End && g.Start < f.End {
			return true
		}
	}
	return false
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func (s *score) recall() float64    { return ratio(sumMap(s.found), sumMap(s.gold)) }
func (s *score) precision() float64 { return ratio(sumMap(s.inGold), sumMap(s.findings)) }

func sumMap(m map[Kind]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func (s *score) table(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%-11s %5s %7s %9s %9s\n", title, "kind", "gold", "recall", "findings", "precision")
	for _, k := range Kinds {
		if s.gold[k] == 0 && s.findings[k] == 0 {
			continue
		}
		fmt.Fprintf(&b, "%-11s %5d %7.3f %9d %9.3f\n", k, s.gold[k], ratio(s.found[k], s.gold[k]), s.findings[k], ratio(s.inGold[k], s.findings[k]))
	}
	fmt.Fprintf(&b, "%-11s %5d %7.3f %9d %9.3f\n", "ALL", sumMap(s.gold), s.recall(), sumMap(s.findings), s.precision())
	return b.String()
}

func evaluate(notes []goldNote, red *Redactor) (*score, []string) {
	s := newScore()
	var details []string
	for _, n := range notes {
		_, got := red.Redact(n.text)
		m, f := s.add(n, got)
		details = append(append(details, m...), f...)
	}
	sort.Strings(details)
	return s, details
}

// TestCorpus measures recall and precision per kind on the annotated notes.
// The development notes and the held-out notes are reported apart; the
// thresholds apply to the whole corpus. Set MEDSEC_DEID_DETAILS=1 to list
// the misses and false findings.
func TestCorpus(t *testing.T) {
	dev, heldout := loadCorpus(t)
	if n := len(dev) + len(heldout); n < 150 {
		t.Fatalf("corpus has %d notes, want at least 150", n)
	}
	red := NewRedactor(Options{})
	t.Run("dev", func(t *testing.T) {
		s, details := evaluate(dev, red)
		t.Log("\n" + s.table(fmt.Sprintf("development notes (%d)", len(dev))))
		if os.Getenv("MEDSEC_DEID_DETAILS") != "" {
			t.Log("\n" + strings.Join(details, "\n"))
		}
	})
	t.Run("heldout", func(t *testing.T) {
		s, details := evaluate(heldout, red)
		t.Log("\n" + s.table(fmt.Sprintf("held-out notes (%d)", len(heldout))))
		if os.Getenv("MEDSEC_DEID_DETAILS") != "" {
			t.Log("\n" + strings.Join(details, "\n"))
		}
	})
	t.Run("all", func(t *testing.T) {
		s, _ := evaluate(append(append([]goldNote(nil), dev...), heldout...), red)
		t.Log("\n" + s.table(fmt.Sprintf("all notes (%d)", len(dev)+len(heldout))))
		if r := s.recall(); r < 0.98 {
			t.Errorf("overall recall %.3f, want >= 0.98", r)
		}
		if p := s.precision(); p < 0.90 {
			t.Errorf("overall precision %.3f, want >= 0.90", p)
		}
	})
}
