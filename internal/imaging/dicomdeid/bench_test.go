package dicomdeid

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

// Benchmarks. The side-by-side with gdcmanon (Debian package
// libgdcm-tools) runs both tools on the same generated directory:
//
//	go test -run '^$' -bench 'Dir|Gdcmanon' -benchtime 1x ./internal/imaging/dicomdeid/
//
// MEDSEC_BENCH_FILES sets the number of files (2000 by default).

var benchSizes = []struct {
	name string
	rows int
}{{"64x64", 64}, {"512x512", 512}}

func benchFile(b *testing.B, rows int) []byte {
	b.Helper()
	ins, err := dicomtest.Generate(dicomtest.Options{Seed: 99, Patients: 1, SeriesPerStudy: 1, InstancesPerSeries: 1, Rows: rows, Columns: rows})
	if err != nil {
		b.Fatal(err)
	}
	return ins[0].Data
}

func filesPerSecond(b *testing.B, files int) {
	b.ReportMetric(float64(files)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkDeidentify: one file at a time on one goroutine, all options on.
func BenchmarkDeidentify(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			data := benchFile(b, size.rows)
			d := newDeid(b, Options{RetainLongitudinalModifiedDates: true, CleanDescriptors: true,
				RetainPatientCharacteristics: true, RetainDeviceIdentity: true})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.File(context.Background(), bytes.NewReader(data), io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			filesPerSecond(b, 1)
		})
	}
}

// BenchmarkSHA256 hashes the same files: the machine's floor for touching
// every byte once.
func BenchmarkSHA256(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			data := benchFile(b, size.rows)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				sha256.Sum256(data)
			}
			filesPerSecond(b, 1)
		})
	}
}

var benchDir = sync.OnceValues(func() (string, error) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("MEDSEC_BENCH_FILES")); err == nil && v > 0 {
		n = v
	}
	dir, err := os.MkdirTemp("", "medsec-dicom-bench-")
	if err != nil {
		return "", err
	}
	// 10 patients, 2 series each: n files of 64x64 16-bit CT and MR slices.
	per := max(1, n/20)
	_, err = dicomtest.WriteDir(dir, dicomtest.Options{Seed: 7, Patients: 10, SeriesPerStudy: 2, InstancesPerSeries: per, Rows: 64, Columns: 64})
	return dir, err
})

func benchInput(b *testing.B) (string, int) {
	b.Helper()
	dir, err := benchDir()
	if err != nil {
		b.Fatal(err)
	}
	files, _, err := listFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	return dir, len(files)
}

// BenchmarkDir de-identifies the whole generated directory with two
// workers, writing synced output files, the way `medsec deid dicom` does.
func BenchmarkDir(b *testing.B) {
	in, n := benchInput(b)
	d := newDeid(b, Options{})
	for b.Loop() {
		out := b.TempDir()
		sum, err := d.Dir(context.Background(), in, out, nil)
		if err != nil || sum.Written != n {
			b.Fatalf("Dir wrote %d of %d files: %v %v", sum.Written, n, err, sum.Failures)
		}
	}
	filesPerSecond(b, n)
}

// BenchmarkGdcmanon runs gdcmanon on the same directory: its PS3.15 E.1
// basic profile mode (which needs a certificate to encrypt the original
// attributes into the file) and its dumb mode with the main identifying
// attributes emptied or removed.
func BenchmarkGdcmanon(b *testing.B) {
	bin, err := exec.LookPath("gdcmanon")
	if err != nil {
		b.Skip("gdcmanon not installed (Debian package libgdcm-tools)")
	}
	in, n := benchInput(b)
	cert := writeCert(b)
	dumb := []string{"--dumb", "--empty", "10,10", "--empty", "10,20", "--empty", "10,30", "--empty", "8,50",
		"--empty", "8,90", "--remove", "8,80", "--remove", "8,81", "--remove", "8,1010", "--remove", "18,1000",
		"--remove", "10,1000", "--remove", "10,1040", "--remove", "10,2154", "--remove", "8,1030", "--remove", "8,103e"}
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"basic-profile", []string{"-e", "-c", cert}},
		{"dumb", dumb},
	} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				out := b.TempDir()
				args := append(append([]string{}, mode.args...), "-i", in, "-o", out, "-r", "--continue")
				if msg, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
					b.Fatalf("gdcmanon: %v\n%s", err, msg)
				}
			}
			filesPerSecond(b, n)
		})
	}
}

// writeCert makes the self-signed certificate gdcmanon's basic profile
// mode encrypts to.
func writeCert(b *testing.B) string {
	b.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "medsec bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "cert.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}
