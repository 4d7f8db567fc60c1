package docsec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testKey = bytes.Repeat([]byte{7}, 32)

var testMark = Mark{ExportID: "ex_abc", StaffID: "st_kim", Username: "dr.kim", Purpose: "TREAT", At: time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)}

func TestWatermarkRoundTrip(t *testing.T) {
	doc := Watermark("Discharge summary: stable.\nFollow up in 2 weeks.\n", testMark, testKey)
	visible := strings.Map(func(r rune) rune {
		if r == bit0 || r == bit1 || r == markOpen {
			return -1
		}
		return r
	}, string(doc))
	for _, want := range []string{"exported by dr.kim (st_kim)", "2026-03-01T09:30:00Z", "for TREAT", "export ex_abc", "Discharge summary: stable.\nFollow up in 2 weeks.\n"} {
		if !strings.Contains(visible, want) {
			t.Errorf("visible text lacks %q:\n%s", want, visible)
		}
	}
	tests := map[string][]byte{
		"whole document":    doc,
		"one line":          []byte(strings.Split(string(doc), "\n")[3]),
		"line pasted later": []byte("forwarded: " + strings.Split(string(doc), "\n")[2] + " end"),
	}
	for name, leak := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ReadMark(leak, testKey)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(testMark, got); diff != "" {
				t.Errorf("mark (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarkRefusesForgeries(t *testing.T) {
	doc := Watermark("note", testMark, testKey)
	stripped := strings.Map(func(r rune) rune {
		if r == bit0 || r == bit1 {
			return -1
		}
		return r
	}, string(doc))
	// One line carries one marker; flip a bit of it.
	flipped := strings.Replace(strings.Split(string(doc), "\n")[0], string(bit0), string(bit1), 1)
	tests := map[string]struct {
		text []byte
		key  []byte
	}{
		"other installation's key": {doc, bytes.Repeat([]byte{8}, 32)},
		"marker stripped":          {[]byte(stripped), testKey},
		"one bit flipped":          {[]byte(flipped), testKey},
		"plain text":               {[]byte("nothing here"), testKey},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if m, err := ReadMark(tt.text, tt.key); !errors.Is(err, ErrNoMarker) {
				t.Errorf("got %+v, %v; want ErrNoMarker", m, err)
			}
		})
	}
}

func TestDocumentText(t *testing.T) {
	tests := map[string]string{
		`{"content":[{"attachment":{"contentType":"text/plain","data":"aGVsbG8="}}]}`: "hello",
		"plain progress note": "plain progress note",
		`{"content":[{"attachment":{"contentType":"application/pdf","data":"JVBERg=="}}]}`: `{"content":[{"attachment":{"contentType":"application/pdf","data":"JVBERg=="}}]}`,
	}
	for in, want := range tests {
		if got := DocumentText([]byte(in)); got != want {
			t.Errorf("DocumentText(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzReadMark reads markers from arbitrary (leaked, untrusted) text: it
// never panics, and anything it accepts re-encodes to the same bytes.
func FuzzReadMark(f *testing.F) {
	f.Add(Watermark("note", testMark, testKey))
	f.Add([]byte("\u2060\u200b\u200c\u2060"))
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := ReadMark(text, testKey)
		if err != nil {
			return
		}
		if _, ok := decodeMark(encodeMark(m, testKey), testKey); !ok {
			t.Fatalf("accepted mark %+v does not round-trip", m)
		}
	})
}
