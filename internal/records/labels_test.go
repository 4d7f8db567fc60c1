package records

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// TestLabelDigestsKeepTheirForm checks that the pooled HMAC gives the
// digests databases already hold (HMAC-SHA256 under the index key of
// "label", the patient id and the label, NUL-separated, first 16 hex
// characters), and that decoding several labels in a row, with MACs
// reused, finds exactly the labels stored.
func TestLabelDigestsKeepTheirForm(t *testing.T) {
	d := &Door{indexKey: []byte(strings.Repeat("k", 32))}
	want := func(id, label string) string {
		m := hmac.New(sha256.New, d.indexKey)
		m.Write([]byte("label\x00" + id + "\x00" + label))
		return hex.EncodeToString(m.Sum(nil))[:labelDigestLen]
	}
	for _, id := range []string{"pt_1", "pt_" + strings.Repeat("x", 200)} {
		for _, l := range SensitivityLabels {
			if got := d.labelDigest(id, l); got != want(id, l) {
				t.Errorf("digest of %s for a patient: %s, want %s", l, got, want(id, l))
			}
		}
	}
	for _, labels := range [][]string{nil, {"hiv"}, {"mental_health", "vip"}, SensitivityLabels} {
		stored, err := d.encodeLabels("pt_2", labels)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.decodeLabels("pt_2", stored); !slices.Equal(got, labels) {
			t.Errorf("decode of %v: %v", labels, got)
		}
		if got := d.decodeLabels("pt_3", stored); len(got) != 0 {
			t.Errorf("another patient's digests decode to %v", got)
		}
	}
}
