package guard

import (
	"bufio"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Quarantine describes a file kept out of the hospital: what it was
// called, where it came from, why it was stopped. The imaging store keeps
// it beside the sealed content; only a security officer releases (with a
// reason, audited) or deletes it.
type Quarantine struct {
	OriginalName  string    `json:"original_name"`
	Origin        string    `json:"origin"` // media label, e.g. "CD from the referring clinic, MRI 2024-05-01"
	SHA256        string    `json:"sha256"`
	Size          int64     `json:"size"`
	Findings      []Finding `json:"findings"`
	QuarantinedAt time.Time `json:"quarantined_at"`
}

// NewQuarantine describes a scanned file for quarantine.
func NewQuarantine(res FileResult, origin string, at time.Time) Quarantine {
	return Quarantine{OriginalName: res.Path, Origin: origin, SHA256: res.SHA256, Size: res.Size,
		Findings: res.Findings, QuarantinedAt: at.UTC()}
}

// Sealer encrypts one chunk with authenticated data, e.g. AES-256-GCM
// under the quarantine's data key; its output carries whatever it needs
// (a nonce) to be opened again.
type Sealer func(plaintext, aad []byte) ([]byte, error)

// Opener reverses a Sealer; it fails when the chunk or its aad was changed.
type Opener func(ciphertext, aad []byte) ([]byte, error)

// ErrTampered means a sealed quarantine item was changed, reordered,
// truncated or does not match its record: do not release it, report it.
var ErrTampered = errors.New("sealed quarantine item was tampered with")

const (
	quarantineMagic = "medsec-quarantine/v1\n"
	sealChunk       = 64 << 10
	maxRecordLen    = 1 << 20
	maxSealedChunk  = sealChunk + 1024
)

// Seal writes the record and the content, sealed in chunks, to w. Each
// chunk's aad binds the record, the chunk's index and whether it is the
// last, so chunks cannot be swapped, reordered or cut off, nor the record
// changed. content is streamed: memory stays at one chunk.
func (q Quarantine) Seal(w io.Writer, content io.Reader, seal Sealer) error {
	record, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("seal quarantine %s: %w", q.SHA256, err)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(quarantineMagic)
	writeFrame(bw, record)
	digest := sha256.Sum256(record)
	if err := sealChunks(bw, content, digest, seal); err != nil {
		return fmt.Errorf("seal quarantine %s: %w", q.SHA256, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("seal quarantine %s: %w", q.SHA256, err)
	}
	return nil
}

func sealChunks(w *bufio.Writer, content io.Reader, digest [32]byte, seal Sealer) error {
	cur, next := make([]byte, sealChunk), make([]byte, sealChunk)
	n, err := io.ReadFull(content, cur)
	for i := uint64(0); ; i++ {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("read content: %w", err)
		}
		var m int
		last := err != nil
		if !last {
			m, err = io.ReadFull(content, next)
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				return fmt.Errorf("read content: %w", err)
			}
			last = m == 0
		}
		sealed, serr := seal(cur[:n], chunkAAD(digest, i, last))
		if serr != nil {
			return fmt.Errorf("seal chunk %d: %w", i, serr)
		}
		writeFrame(w, sealed)
		if last {
			return nil
		}
		cur, next, n = next, cur, m
	}
}

func chunkAAD(digest [32]byte, i uint64, last bool) []byte {
	aad := make([]byte, 0, 41)
	aad = append(aad, digest[:]...)
	aad = binary.BigEndian.AppendUint64(aad, i)
	if last {
		return append(aad, 1)
	}
	return append(aad, 0)
}

func writeFrame(w *bufio.Writer, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	w.Write(n[:])
	w.Write(b)
}

// OpenQuarantine reads a sealed item from r, writes the content to w and
// returns its record. Content reaches w before the end is checked: on an
// error, discard what w received. The content's SHA-256 must match the
// record's, or the result is ErrTampered.
func OpenQuarantine(r io.Reader, w io.Writer, open Opener) (Quarantine, error) {
	var q Quarantine
	br := bufio.NewReader(r)
	magic := make([]byte, len(quarantineMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != quarantineMagic {
		return q, fmt.Errorf("open quarantine: not a sealed quarantine item: %w", ErrTampered)
	}
	record, err := readFrame(br, maxRecordLen)
	if err != nil {
		return q, fmt.Errorf("open quarantine record: %w", err)
	}
	if err := json.Unmarshal(record, &q); err != nil {
		return q, fmt.Errorf("open quarantine record: %w", ErrTampered)
	}
	sum, err := openChunks(br, w, sha256.Sum256(record), open)
	if err != nil {
		return q, fmt.Errorf("open quarantine %s: %w", q.SHA256, err)
	}
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum)), []byte(q.SHA256)) != 1 {
		return q, fmt.Errorf("open quarantine %s: content digest differs: %w", q.SHA256, ErrTampered)
	}
	return q, nil
}

func openChunks(r *bufio.Reader, w io.Writer, digest [32]byte, open Opener) ([]byte, error) {
	h := sha256.New()
	for i := uint64(0); ; i++ {
		sealed, err := readFrame(r, maxSealedChunk)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		_, peekErr := r.Peek(1)
		last := peekErr == io.EOF
		plain, err := open(sealed, chunkAAD(digest, i, last))
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, ErrTampered)
		}
		h.Write(plain)
		if _, err := w.Write(plain); err != nil {
			return nil, fmt.Errorf("write content: %w", err)
		}
		if last {
			return h.Sum(nil), nil
		}
	}
}

func readFrame(r io.Reader, max uint32) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("frame length: %w", ErrTampered)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > max {
		return nil, fmt.Errorf("frame of %d bytes over the %d-byte limit: %w", size, max, ErrTampered)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("frame body: %w", ErrTampered)
	}
	return b, nil
}

// AEADSealer seals with aead under a fresh random nonce, which it puts
// before the ciphertext.
func AEADSealer(aead cipher.AEAD) Sealer {
	return func(plaintext, aad []byte) ([]byte, error) {
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("nonce: %w", err)
		}
		return aead.Seal(nonce, nonce, plaintext, aad), nil
	}
}

// AEADOpener opens what AEADSealer sealed with the same aead.
func AEADOpener(aead cipher.AEAD) Opener {
	return func(sealed, aad []byte) ([]byte, error) {
		if len(sealed) < aead.NonceSize() {
			return nil, errors.New("sealed chunk shorter than its nonce")
		}
		return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	}
}
