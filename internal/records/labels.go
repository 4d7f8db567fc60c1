package records

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// decodeLabels returns the labels whose digests the stored form holds.
func (d *Door) decodeLabels(patientID, stored string) []string {
	if stored == "" {
		return nil
	}
	slots := strings.Split(stored, ",")
	var out []string
	for _, l := range SensitivityLabels {
		if slices.Contains(slots, d.labelDigest(patientID, l)) {
			out = append(out, l)
		}
	}
	return out
}

func (d *Door) labelDigest(patientID, label string) string {
	m := hmac.New(sha256.New, d.indexKey)
	m.Write([]byte("label\x00" + patientID + "\x00" + label))
	return hex.EncodeToString(m.Sum(nil))[:labelDigestLen]
}
