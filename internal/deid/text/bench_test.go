package text

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// corpusText joins every note of the annotated corpus, markup stripped.
func corpusText(b *testing.B) string {
	b.Helper()
	dev, heldout := loadCorpus(b)
	var sb strings.Builder
	for _, n := range append(dev, heldout...) {
		sb.WriteString(n.text + "\n\n")
	}
	return sb.String()
}

// BenchmarkRedact measures Tags-mode redaction over the corpus, note by
// note, in MB/s. Compare with BenchmarkSHA256 over the same bytes.
func BenchmarkRedact(b *testing.B) {
	notes := strings.SplitAfter(corpusText(b), "\n\n")
	red := NewRedactor(Options{})
	b.SetBytes(int64(len(strings.Join(notes, ""))))
	b.ResetTimer()
	for range b.N {
		for _, n := range notes {
			red.Redact(n)
		}
	}
}

// BenchmarkRedactSurrogates is BenchmarkRedact in surrogate mode.
func BenchmarkRedactSurrogates(b *testing.B) {
	notes := strings.SplitAfter(corpusText(b), "\n\n")
	red := NewRedactor(Options{Mode: Surrogates, Secret: []byte("bench")})
	b.SetBytes(int64(len(strings.Join(notes, ""))))
	b.ResetTimer()
	for range b.N {
		for _, n := range notes {
			red.Redact(n)
		}
	}
}

// BenchmarkSHA256 hashes the same bytes, so the ratio to BenchmarkRedact
// carries over to other machines.
func BenchmarkSHA256(b *testing.B) {
	s := []byte(corpusText(b))
	b.SetBytes(int64(len(s)))
	b.ResetTimer()
	for range b.N {
		sha256.Sum256(s)
	}
}
