package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/google/go-cmp/cmp"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func cmpDiff(want, got any) string { return cmp.Diff(want, got) }
