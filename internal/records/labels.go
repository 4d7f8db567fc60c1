package records

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// SensitivityLabels are the labels a patient's record may carry; the
// policy weighs them (policies/sensitivity.cedar).
var SensitivityLabels = []string{"mental_health", "hiv", "genetics", "substance_use", "vip"}

// A patient's labels are stored as keyed digests, one slot per possible
// label, the unused slots filled with random values: the database file
// alone tells neither which labels a patient has nor how many. The digest
// includes the patient's id, so equal labels of two patients look unrelated.
const labelDigestLen = 16 // hex characters

// encodeLabels validates labels and returns their stored form.
func (d *Door) encodeLabels(patientID string, labels []string) (string, error) {
	slots := make([]string, 0, len(SensitivityLabels))
	for _, l := range labels {
		if !slices.Contains(SensitivityLabels, l) {
			return "", fmt.Errorf("%w: unknown sensitivity label %q (one of %s)", ErrInvalid, l, strings.Join(SensitivityLabels, ", "))
		}
		if dg := d.labelDigest(patientID, l); !slices.Contains(slots, dg) {
			slots = append(slots, dg)
		}
	}
	for len(slots) < len(SensitivityLabels) {
		b := make([]byte, labelDigestLen/2)
		rand.Read(b)
		slots = append(slots, hex.EncodeToString(b))
	}
	slices.Sort(slots)
	return strings.Join(slots, ","), nil
}

// decodeLabels returns the labels whose digests the stored form holds. It
// runs on every read, so it takes one keyed HMAC from the pool for all five
// digests and compares them without building strings.
func (d *Door) decodeLabels(patientID, stored string) []string {
	if stored == "" {
		return nil
	}
	m := d.labelMAC()
	defer d.labelMACs.Put(m)
	var out []string
	buf := make([]byte, 0, 128)
	for _, l := range SensitivityLabels {
		var digest [labelDigestLen]byte
		buf = labelDigestInto(m, buf, patientID, l)
		hex.Encode(digest[:], buf[:labelDigestLen/2])
		if hasSlot(stored, digest[:]) {
			out = append(out, l)
		}
	}
	return out
}

// hasSlot reports whether the comma-separated stored form holds digest.
func hasSlot(stored string, digest []byte) bool {
	for slot := range strings.SplitSeq(stored, ",") {
		if slot == string(digest) {
			return true
		}
	}
	return false
}

func (d *Door) labelDigest(patientID, label string) string {
	m := d.labelMAC()
	defer d.labelMACs.Put(m)
	sum := labelDigestInto(m, nil, patientID, label)
	return hex.EncodeToString(sum)[:labelDigestLen]
}

// labelDigestInto computes the keyed digest of a patient's label with m
// (reset first) and returns it in buf's storage.
func labelDigestInto(m hash.Hash, buf []byte, patientID, label string) []byte {
	m.Reset()
	msg := append(append(append(append(buf[:0], "label\x00"...), patientID...), 0), label...)
	m.Write(msg)
	return m.Sum(msg[:0])
}

// labelMAC returns an HMAC keyed with the index key. Keying one costs two
// SHA-256 blocks and a few allocations; Reset brings a pooled one back to
// its keyed state for much less.
func (d *Door) labelMAC() hash.Hash {
	if m, ok := d.labelMACs.Get().(hash.Hash); ok {
		return m
	}
	return hmac.New(sha256.New, d.indexKey)
}
