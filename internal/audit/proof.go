package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// InclusionProof shows a third party that one event is in the log that a
// signed checkpoint describes. It needs nothing from medsec to check: the
// verifier key, an RFC 6962 hasher, and this value.
type InclusionProof struct {
	Chain      string   `json:"chain"`
	Index      uint64   `json:"index"`
	Size       uint64   `json:"size"`
	Leaf       []byte   `json:"leaf"`      // the event's exact stored bytes
	LeafHash   []byte   `json:"leaf_hash"` // SHA-256(0x00 || leaf)
	Hashes     [][]byte `json:"proof"`
	Root       []byte   `json:"root"`
	Checkpoint string   `json:"checkpoint"` // the signed note
	Event      Event    `json:"event"`      // the leaf, decoded for reading
}

// Prove builds the inclusion proof of event index against the newest
// signed checkpoint that covers it.
func (vf *Verifier) Prove(ctx context.Context, index uint64) (InclusionProof, error) {
	cps, err := vf.checkpoints(ctx)
	if err != nil {
		return InclusionProof{}, err
	}
	if len(cps) == 0 || cps[len(cps)-1].Size <= index {
		return InclusionProof{}, fmt.Errorf("no signed checkpoint covers event %d yet (newest covers %d); try again after the next checkpoint", index, lastSize(cps))
	}
	cp := cps[len(cps)-1]
	leaves, target, err := vf.leafHashes(ctx, cp.Size, index)
	if err != nil {
		return InclusionProof{}, err
	}
	nodes, err := proof.Inclusion(index, cp.Size)
	if err != nil {
		return InclusionProof{}, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		hashes[i] = subtreeHash(leaves, id)
	}
	hashes, err = nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return InclusionProof{}, err
	}
	ev, err := DecodeLeaf(target)
	if err != nil {
		return InclusionProof{}, err
	}
	p := InclusionProof{Chain: vf.Chain, Index: index, Size: cp.Size, Leaf: target, LeafHash: leaves[index],
		Hashes: hashes, Root: cp.Root, Checkpoint: cp.Note, Event: ev}
	if err := CheckProof(p, vf.NoteVerifier); err != nil {
		return InclusionProof{}, fmt.Errorf("the stored log does not match its checkpoint (run medsec audit verify): %w", err)
	}
	return p, nil
}

func lastSize(cps []Checkpoint) uint64 {
	if len(cps) == 0 {
		return 0
	}
	return cps[len(cps)-1].Size
}

// leafHashes reads the first size leaf hashes, and the bytes of event index.
func (vf *Verifier) leafHashes(ctx context.Context, size, index uint64) ([][]byte, []byte, error) {
	rows, err := vf.DB.Query(ctx, `SELECT idx, event FROM audit_events WHERE chain = ? AND idx < ? ORDER BY idx`, vf.Chain, int64(size))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	hashes := make([][]byte, 0, size)
	var target []byte
	for rows.Next() {
		var idx int64
		var ev []byte
		if err := rows.Scan(&idx, &ev); err != nil {
			return nil, nil, err
		}
		if uint64(idx) != uint64(len(hashes)) {
			return nil, nil, fmt.Errorf("%w: event %d is missing (run medsec audit verify)", ErrTampered, len(hashes))
		}
		if uint64(idx) == index {
			target = ev
		}
		hashes = append(hashes, hasher.HashLeaf(ev))
	}
	if uint64(len(hashes)) != size {
		return nil, nil, fmt.Errorf("%w: the log holds %d events, its checkpoint %d", ErrTampered, len(hashes), size)
	}
	return hashes, target, rows.Err()
}

// subtreeHash is the hash of the perfect subtree id over leaf hashes.
func subtreeHash(leaves [][]byte, id compact.NodeID) []byte {
	begin, end := id.Coverage()
	rng := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(begin)
	for _, h := range leaves[begin:end] {
		rng.Append(h, nil)
	}
	return rng.Hashes()[0] // a perfect subtree's range is one node
}

// CheckProof verifies an inclusion proof with only the log's public
// verifier key: the checkpoint's signature, the leaf's hash and the path to
// the signed root.
func CheckProof(p InclusionProof, verifier note.Verifier) error {
	cp, err := OpenCheckpoint(p.Checkpoint, verifier)
	if err != nil {
		return err
	}
	if cp.Size != p.Size {
		return errors.New("the proof's size is not its checkpoint's")
	}
	lh := hasher.HashLeaf(p.Leaf)
	if err := proof.VerifyInclusion(hasher, p.Index, p.Size, lh, p.Hashes, cp.Root); err != nil {
		return fmt.Errorf("event %d is not in the signed log: %w", p.Index, err)
	}
	// The decoded event is what a person reads: it must say what the
	// proven bytes say.
	ev, err := DecodeLeaf(p.Leaf)
	if err != nil {
		return err
	}
	a, _ := json.Marshal(ev)
	b, _ := json.Marshal(p.Event)
	if !bytes.Equal(a, b) || ev.Index != p.Index {
		return errors.New("the event shown in the proof differs from the proven event")
	}
	return nil
}
