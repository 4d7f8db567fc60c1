package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/transparency-dev/merkle/rfc6962"
)

// hashChildren is RFC 6962's interior node hash, SHA-256(0x01 || l || r),
// computed on the stack: the tree code calls it once per event, and
// hasher.HashChildren allocates a fresh hasher and buffer each time.
func hashChildren(l, r []byte) []byte {
	if len(l) != sha256.Size || len(r) != sha256.Size {
		return hasher.HashChildren(l, r)
	}
	var buf [1 + 2*sha256.Size]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+sha256.Size:], r)
	sum := sha256.Sum256(buf[:])
	return sum[:]
}

// leafHash writes into dst the leaf hash of in, which is a leaf with
// RFC 6962's prefix byte already in front (as withIndex returns it).
func leafHash(dst, in []byte) {
	sum := sha256.Sum256(in)
	copy(dst, sum[:])
}

// leafHasher computes RFC 6962 leaf hashes, SHA-256(0x00 || leaf), in a
// buffer it reuses. One goroutine uses it at a time.
type leafHasher struct{ buf []byte }

func (lh *leafHasher) sum(leaf []byte) [sha256.Size]byte {
	lh.buf = append(append(lh.buf[:0], rfc6962.RFC6962LeafHashPrefix), leaf...)
	return sha256.Sum256(lh.buf)
}

// rowMACer computes the MAC that binds a row to its chain and index:
// HMAC-SHA256(key, chain || 0x00 || index (8 bytes, big endian) || leaf
// hash). It reuses its HMAC state and buffers, so one goroutine uses it at
// a time.
type rowMACer struct {
	m   hash.Hash
	msg []byte
	sum []byte
	pre int // length of chain || 0x00 at the start of msg
}

func newRowMACer(key []byte, chain string) *rowMACer {
	msg := make([]byte, 0, len(chain)+1+8+sha256.Size)
	msg = append(append(msg, chain...), 0)
	return &rowMACer{m: hmac.New(sha256.New, key), msg: msg, pre: len(msg), sum: make([]byte, 0, sha256.Size)}
}

// mac returns the row's MAC in a buffer that the next call overwrites.
func (r *rowMACer) mac(idx uint64, leafHash []byte) []byte {
	r.msg = binary.BigEndian.AppendUint64(r.msg[:r.pre], idx)
	r.msg = append(r.msg, leafHash...)
	r.m.Reset()
	r.m.Write(r.msg)
	r.sum = r.m.Sum(r.sum[:0])
	return r.sum
}
