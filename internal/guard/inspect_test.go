package guard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/medsec/medsec/internal/guard/iso9660/iso9660test"
)

// inspected collects what Config.Inspect received: the content read again,
// by path relative to root.
type inspected struct {
	mu       sync.Mutex
	root     string
	content  map[string][]byte
	results  map[string]FileResult
	noReopen []string
}

func (in *inspected) inspect(_ context.Context, res FileResult, open func() (io.ReadCloser, error)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := strings.TrimPrefix(filepath.ToSlash(res.Path), filepath.ToSlash(in.root)+"/")
	in.results[p] = res
	if open == nil {
		in.noReopen = append(in.noReopen, p)
		return
	}
	rc, err := open()
	if err != nil {
		in.content[p] = []byte("OPEN FAILED: " + err.Error())
		return
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		b = []byte("READ FAILED: " + err.Error())
	}
	in.content[p] = b
}

func newInspected(root string) *inspected {
	return &inspected{root: root, content: map[string][]byte{}, results: map[string]FileResult{}}
}

// TestInspectReadsEveryFileAgain checks that the import can get at the
// content of every file the scan read, archive and image entries included,
// and that it is the content the scan judged.
func TestInspectReadsEveryFileAgain(t *testing.T) {
	polyglot := part10([]byte("MZ\x90\x00"), tsExplicitLittle, encode(mrDataset("3"), true, binary.LittleEndian))
	img := iso9660test.Build([]iso9660test.Entry{
		{Path: "DICOM/IM1", Data: cleanDICOM("1")},
		{Path: "STUDY.ZIP", Data: zipOf(t, true, zf{"IM2.dcm", cleanDICOM("2")}, zf{"IM3.dcm", polyglot})},
	}, iso9660test.Options{Label: "CD"})
	root := writeTree(t, map[string][]byte{"cd.iso": img, "DICOM/IM4": cleanDICOM("4"), "README.TXT": []byte("viewer")})
	in := newInspected(root)
	rep := scanTree(t, Config{Inspect: in.inspect}, root)
	want := map[string][]byte{
		"cd.iso": img, "cd.iso!/DICOM/IM1": cleanDICOM("1"), "cd.iso!/STUDY.ZIP!/IM2.dcm": cleanDICOM("2"),
		"cd.iso!/STUDY.ZIP!/IM3.dcm": polyglot, "DICOM/IM4": cleanDICOM("4"), "README.TXT": []byte("viewer"),
	}
	for p, w := range want {
		if !bytes.Equal(in.content[p], w) {
			t.Errorf("%s: read again %d bytes (%.40q), want the %d bytes scanned", p, len(in.content[p]), in.content[p], len(w))
		}
		sum := sha256.Sum256(in.content[p])
		if hex.EncodeToString(sum[:]) != in.results[p].SHA256 {
			t.Errorf("%s: content read again does not hash to the result's SHA-256", p)
		}
	}
	if len(in.results) != len(rep.Files) {
		t.Errorf("inspected %d files, the report lists %d", len(in.results), len(rep.Files))
	}
	if !in.results["cd.iso!/STUDY.ZIP!/IM3.dcm"].Malicious() || in.results["cd.iso!/STUDY.ZIP!/IM2.dcm"].Malicious() {
		t.Errorf("the results handed over are not the scan's judgement")
	}
}

func TestInspectStreamUpload(t *testing.T) {
	data := cleanDICOM("1")
	for _, tt := range []struct {
		name   string
		r      io.Reader
		reopen bool
	}{
		{"random access", bytes.NewReader(data), true},
		{"plain stream", io.MultiReader(bytes.NewReader(data)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := newInspected("")
			if _, err := New(Config{Inspect: in.inspect}).ScanReader(context.Background(), "up.dcm", tt.r); err != nil {
				t.Fatal(err)
			}
			if got := len(in.noReopen) == 0; got != tt.reopen {
				t.Errorf("open given = %v, want %v", got, tt.reopen)
			}
			if tt.reopen && !bytes.Equal(in.content["up.dcm"], data) {
				t.Errorf("read again %d bytes, want %d", len(in.content["up.dcm"]), len(data))
			}
		})
	}
}
