package guard

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// benchSet writes a CD-like tree of n files: DICOM instances of 32-128
// KiB of pixel data (80%), JPEG-headed images (10%) and text (10%).
// It returns the root and the total bytes.
func benchSet(tb testing.TB, n int) (string, int64) {
	tb.Helper()
	root := tb.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := range n {
		var name string
		var data []byte
		switch {
		case i%10 < 8:
			px := make([]byte, (32+rng.IntN(96))<<10)
			fillRandom(rng, px)
			ds := mrDataset(fmt.Sprint(i))
			ds[len(ds)-1].value = px
			name, data = fmt.Sprintf("DICOM/ST%02d/IM%05d", i%20, i), part10(nil, tsExplicitLittle, encode(ds, true, binary.LittleEndian))
		case i%10 == 8:
			data = append([]byte("\xff\xd8\xff\xe0"), make([]byte, 16<<10)...)
			fillRandom(rng, data[4:])
			name = fmt.Sprintf("IMAGES/P%05d.JPG", i)
		default:
			name, data = fmt.Sprintf("DOCS/R%05d.TXT", i), []byte(fmt.Sprintf("report %d: no findings\n", i))
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		must(tb, os.MkdirAll(filepath.Dir(p), 0o755))
		must(tb, os.WriteFile(p, data, 0o644))
		total += int64(len(data))
	}
	return root, total
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
}

const benchFiles = 3000

func BenchmarkScan(b *testing.B) {
	root, total := benchSet(b, benchFiles)
	s := New(Config{})
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		rep, err := s.Scan(context.Background(), root)
		if err != nil || rep.Summary.Files != benchFiles || rep.Malicious() {
			b.Fatalf("scan: %v, %d files, malicious %v", err, rep.Summary.Files, rep.Malicious())
		}
	}
	b.ReportMetric(float64(benchFiles*b.N)/b.Elapsed().Seconds(), "files/s")
}

func BenchmarkScanWithClamd(b *testing.B) {
	c := startClamd(b, "100M")
	root, total := benchSet(b, benchFiles)
	s := New(Config{Clamd: c})
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Scan(context.Background(), root); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchFiles*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkSHA256 is the floor under every scan: each byte is hashed.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sha256.Sum256(buf)
	}
}

// TestClamscanSideBySide prints medsec's scan rate beside Debian's
// clamscan on the same generated files (clamscan with only the test's
// signature database: no signatures can be downloaded here, so this is
// the engine's floor, not its rate with the full database). Run with
// MEDSEC_BENCH_CLAMSCAN=1 go test -run TestClamscanSideBySide -v.
func TestClamscanSideBySide(t *testing.T) {
	if os.Getenv("MEDSEC_BENCH_CLAMSCAN") == "" {
		t.Skip("set MEDSEC_BENCH_CLAMSCAN=1 to compare with clamscan")
	}
	bin, err := exec.LookPath("clamscan")
	if err != nil {
		t.Skip("SKIPPING: clamscan is not installed (Debian package clamav)")
	}
	root, total := benchSet(t, benchFiles)
	db := t.TempDir()
	must(t, os.WriteFile(filepath.Join(db, "medsec-test.ndb"), []byte("Medsec.Test.Marker:0:*:4d454453454300\n"), 0o644))
	start := time.Now()
	rep, err := New(Config{}).Scan(context.Background(), root)
	must(t, err)
	ours := time.Since(start)
	start = time.Now()
	out, err := exec.Command(bin, "-r", "--bytecode=no", "-d", db, root).CombinedOutput()
	theirs := time.Since(start)
	if err != nil {
		t.Fatalf("clamscan: %v\n%s", err, out)
	}
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%.1f MB/s, %.0f files/s (%s)", float64(total)/d.Seconds()/1e6, float64(benchFiles)/d.Seconds(), d.Round(time.Millisecond))
	}
	t.Logf("%d files, %d bytes", rep.Summary.Files, total)
	t.Logf("medsec scan: %s", rate(ours))
	t.Logf("clamscan:    %s", rate(theirs))
}
