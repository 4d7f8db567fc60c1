package guard

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func testAEAD(t *testing.T) cipher.AEAD {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	must(t, err)
	aead, err := cipher.NewGCM(block)
	must(t, err)
	return aead
}

func sealed(t *testing.T, aead cipher.AEAD, content []byte) (Quarantine, []byte) {
	t.Helper()
	q := Quarantine{OriginalName: "DICOM/IM2", Origin: "CD: MRI from referring clinic", SHA256: sha256Hex(content),
		Size: int64(len(content)), QuarantinedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Findings: []Finding{{Path: "DICOM/IM2", Detector: DetectDICOMPreamble, Severity: Critical, Reason: "PE in preamble"}}}
	var out bytes.Buffer
	must(t, q.Seal(&out, bytes.NewReader(content), AEADSealer(aead)))
	return q, out.Bytes()
}

func TestQuarantineRoundTrip(t *testing.T) {
	aead := testAEAD(t)
	for _, size := range []int{0, 1, sealChunk, sealChunk + 1, 3*sealChunk + 17} {
		content := make([]byte, size)
		rand.Read(content)
		q, blob := sealed(t, aead, content)
		if size > 16 && bytes.Contains(blob, content[:16]) {
			t.Fatalf("size %d: sealed item holds plaintext", size)
		}
		var back bytes.Buffer
		gotQ, err := OpenQuarantine(bytes.NewReader(blob), &back, AEADOpener(aead))
		if err != nil {
			t.Fatalf("size %d: open: %v", size, err)
		}
		if diff := cmpDiff(q, gotQ); diff != "" {
			t.Errorf("size %d: record (-want +got):\n%s", size, diff)
		}
		if !bytes.Equal(back.Bytes(), content) {
			t.Errorf("size %d: content differs after the round trip", size)
		}
	}
}

func TestQuarantineTamper(t *testing.T) {
	aead := testAEAD(t)
	content := bytes.Repeat([]byte("benign quarantined bytes "), 10000) // 4 chunks
	_, blob := sealed(t, aead, content)
	recordEnd := len(quarantineMagic) + 4 + int(binary.BigEndian.Uint32(blob[len(quarantineMagic):]))
	frame := 4 + aead.NonceSize() + sealChunk + aead.Overhead()
	flip := func(i int) []byte { b := bytes.Clone(blob); b[i] ^= 1; return b }
	swap := bytes.Clone(blob)
	copy(swap[recordEnd:], blob[recordEnd+frame:recordEnd+2*frame])
	copy(swap[recordEnd+frame:], blob[recordEnd:recordEnd+frame])
	_, other := sealed(t, aead, []byte("other content"))
	spliced := append(bytes.Clone(blob[:recordEnd]), other[len(other)-(4+aead.NonceSize()+13+aead.Overhead()):]...)
	tests := map[string][]byte{
		"ciphertext bit flipped":  flip(len(blob) - 5),
		"record changed":          flip(len(quarantineMagic) + 20),
		"chunks swapped":          swap,
		"last chunks cut off":     blob[:recordEnd+2*frame],
		"chunk from another item": spliced,
		"not an item":             []byte("hello"),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := OpenQuarantine(bytes.NewReader(b), &bytes.Buffer{}, AEADOpener(aead))
			if !errors.Is(err, ErrTampered) {
				t.Errorf("err = %v, want ErrTampered", err)
			}
		})
	}
	// A record whose digest does not match the content is refused too.
	q := Quarantine{SHA256: sha256Hex([]byte("something else"))}
	var out bytes.Buffer
	must(t, q.Seal(&out, bytes.NewReader([]byte("content")), AEADSealer(aead)))
	if _, err := OpenQuarantine(&out, &bytes.Buffer{}, AEADOpener(aead)); !errors.Is(err, ErrTampered) {
		t.Errorf("digest mismatch: err = %v, want ErrTampered", err)
	}
}

func TestNewQuarantine(t *testing.T) {
	res := FileResult{Path: "cd/IM2", Size: 10, SHA256: "ab", Findings: []Finding{{Path: "cd/IM2", Severity: High}}}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("KST", 9*3600))
	q := NewQuarantine(res, "USB from vendor", at)
	want := Quarantine{OriginalName: "cd/IM2", Origin: "USB from vendor", SHA256: "ab", Size: 10, Findings: res.Findings, QuarantinedAt: at.UTC()}
	if diff := cmpDiff(want, q); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
