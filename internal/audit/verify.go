package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/store"
)

// Verification is the result of checking one chain: a value with a reason a
// person can read, which goes into the audit log as it is.
type Verification struct {
	Chain string `json:"chain"`
	// Events is the number of rows read; Checkpoint the size of the newest
	// validly signed checkpoint (from the database or the file).
	Events     uint64 `json:"events"`
	Checkpoint uint64 `json:"checkpoint"`
	// Checkpoints counts the signed checkpoints checked against the tree.
	Checkpoints int  `json:"checkpoints_checked"`
	OK          bool `json:"ok"`
	// FirstBad is the index of the first event that is missing, changed,
	// inserted or out of place, or -1.
	FirstBad int64  `json:"first_bad"`
	Problem  string `json:"problem,omitempty"`
	// IndexChecked says the patient index was checked against the events;
	// Indexed is how many events it covered (the newest may not be indexed
	// yet).
	IndexChecked bool   `json:"index_checked,omitempty"`
	Indexed      uint64 `json:"indexed,omitempty"`
}

// VerifyError is returned by Verify when the log fails; it matches
// ErrTampered.
type VerifyError struct{ V Verification }

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit chain %s: first bad event %d: %s", e.V.Chain, e.V.FirstBad, e.V.Problem)
}

// Is makes errors.Is(err, ErrTampered) true.
func (e *VerifyError) Is(target error) bool { return target == ErrTampered }

// Verifier checks a chain against its signed checkpoints.
type Verifier struct {
	DB             *store.DB
	Chain          string
	NoteVerifier   note.Verifier
	MACKey         []byte
	CheckpointFile string
	// Index also checks the patient index against the events, so a deleted
	// row (a read hidden from a patient's access history) is found. It
	// decodes every event: a second, slower pass.
	Index bool
}

// Summary is the one-line report of a verification.
func (v Verification) Summary() string {
	if v.OK {
		index := ""
		if v.IndexChecked {
			index = fmt.Sprintf("; the patient index matches the events (%d indexed)", v.Indexed)
		}
		return fmt.Sprintf("audit log intact: chain %s, %d events, %d signed checkpoints match (newest covers %d events)%s",
			v.Chain, v.Events, v.Checkpoints, v.Checkpoint, index)
	}
	return fmt.Sprintf("AUDIT LOG TAMPERED: chain %s, first bad event %d: %s", v.Chain, v.FirstBad, v.Problem)
}

// Verify recomputes the chain's Merkle tree from the stored events and
// checks every row's binding to its index, every signed checkpoint's root,
// and that no signed checkpoint covers more events than are stored; with
// Index set, also the patient index. It returns a *VerifyError naming the
// first bad index when anything fails.
func (vf *Verifier) Verify(ctx context.Context) (Verification, error) {
	res := Verification{Chain: vf.Chain, FirstBad: -1}
	cps, err := vf.checkpoints(ctx)
	if ve := (*VerifyError)(nil); errors.As(err, &ve) {
		return ve.V, err
	}
	if err != nil {
		return res, err
	}
	if len(cps) == 0 {
		return res.fail(0, "no validly signed checkpoint was found in the database or the checkpoint file")
	}
	res.Checkpoint = cps[len(cps)-1].Size
	var indexed int64 // read before the events: it can only grow
	if vf.Index {
		if indexed, _, err = indexLag(ctx, vf.DB, vf.Chain); err != nil {
			return res, err
		}
	}
	if err := vf.walk(ctx, &res, cps); err != nil {
		return res, err
	}
	if res.Events < res.Checkpoint {
		return res.fail(int64(res.Events), fmt.Sprintf("log truncated: a signed checkpoint covers %d events but only %d are stored", res.Checkpoint, res.Events))
	}
	var headSize int64
	if err := vf.DB.QueryRow(ctx, `SELECT size FROM audit_heads WHERE chain = ?`, vf.Chain).Scan(&headSize); err != nil {
		return res.fail(int64(res.Events), "the chain's head row is missing")
	}
	if uint64(headSize) != res.Events {
		return res.fail(min(headSize, int64(res.Events)), fmt.Sprintf("the head says %d events, %d are stored", headSize, res.Events))
	}
	if vf.Index {
		if err := vf.checkIndex(ctx, &res, indexed); err != nil {
			return res, err
		}
		res.IndexChecked, res.Indexed = true, uint64(indexed)
	}
	res.OK = true
	return res, nil
}

func (v Verification) fail(idx int64, problem string) (Verification, error) {
	err := v.mark(idx, problem)
	return v, err
}

// mark records the failure in v and returns it as a *VerifyError.
func (v *Verification) mark(idx int64, problem string) error {
	v.OK, v.FirstBad, v.Problem = false, idx, problem
	return &VerifyError{V: *v}
}

// checkpoints gathers validly signed checkpoints from the database and the
// file, sorted by size. Checkpoints that disagree about one size, or any
// badly signed one, are tampering.
func (vf *Verifier) checkpoints(ctx context.Context) ([]Checkpoint, error) {
	var notes []string
	rows, err := vf.DB.Query(ctx, `SELECT note FROM audit_checkpoints WHERE chain = ? ORDER BY size`, vf.Chain)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		notes = append(notes, n)
	}
	rows.Close()
	lines, err := readCheckpointFile(vf.CheckpointFile, vf.Chain)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &VerifyError{V: Verification{Chain: vf.Chain, FirstBad: 0, Problem: "the checkpoint file " + vf.CheckpointFile + " is missing"}}
	}
	for _, l := range lines {
		notes = append(notes, l.Note)
	}
	bySize := map[uint64]Checkpoint{}
	for _, n := range notes {
		cp, err := OpenCheckpoint(n, vf.NoteVerifier)
		if err != nil {
			return nil, &VerifyError{V: Verification{Chain: vf.Chain, FirstBad: 0, Problem: "a stored checkpoint is not validly signed: " + err.Error()}}
		}
		if old, ok := bySize[cp.Size]; ok && !bytes.Equal(old.Root, cp.Root) {
			return nil, &VerifyError{V: Verification{Chain: vf.Chain, FirstBad: int64(cp.Size), Problem: fmt.Sprintf("two signed checkpoints of size %d disagree (the log was forked)", cp.Size)}}
		}
		bySize[cp.Size] = cp
	}
	out := make([]Checkpoint, 0, len(bySize))
	for _, cp := range bySize {
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Size < out[j].Size })
	return out, nil
}

// verifyChunk is one range of indexes, read and hashed by one worker.
type verifyChunk struct {
	from, to uint64  // the index range [from, to)
	idx      []int64 // stored indexes; nil when they are from..to-1
	hashes   [][32]byte
	bad      int // position of the first row whose MAC fails, or -1
	err      error
	done     chan struct{}
}

// index is the stored index of the chunk's i-th row.
func (c *verifyChunk) index(i int) int64 {
	if c.idx == nil { // read densely: the rows are from..to-1
		return int64(c.from) + int64(i)
	}
	return c.idx[i]
}

// verifyChunkSize balances parallelism against memory held in flight.
// (A variable so tests can put chunk boundaries among tampered rows.)
var verifyChunkSize uint64 = 16384

// walk reads the chain in index ranges on several connections at once; each
// worker hashes its rows and checks their MACs as it reads them, and the
// tree is extended in order.
func (vf *Verifier) walk(ctx context.Context, res *Verification, cps []Checkpoint) error {
	// Two queries: SQLite answers a lone MIN or MAX from the primary key,
	// but both in one query scan the whole table.
	var lo, hi sql.NullInt64
	if err := vf.DB.QueryRow(ctx, `SELECT MIN(idx) FROM audit_events WHERE chain = ?`, vf.Chain).Scan(&lo); err != nil {
		return fmt.Errorf("read audit events: %w", err)
	}
	if err := vf.DB.QueryRow(ctx, `SELECT MAX(idx) FROM audit_events WHERE chain = ?`, vf.Chain).Scan(&hi); err != nil {
		return fmt.Errorf("read audit events: %w", err)
	}
	if lo.Valid && lo.Int64 < 0 {
		return res.mark(0, fmt.Sprintf("an event with index %d was inserted", lo.Int64))
	}
	end := uint64(0)
	if hi.Valid {
		end = uint64(hi.Int64) + 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	ordered := make(chan *verifyChunk, 2*workers)
	jobs := make(chan *verifyChunk, 2*workers)
	go produceChunks(ctx, end, ordered, jobs)
	for range workers {
		go vf.chunkWorker(ctx, jobs)
	}
	err := vf.fold(res, cps, ordered)
	cancel()
	for range ordered { // let the producer finish
	}
	return err
}

func produceChunks(ctx context.Context, end uint64, ordered, jobs chan<- *verifyChunk) {
	defer close(ordered)
	defer close(jobs)
	for from := uint64(0); from < end; from += verifyChunkSize {
		c := &verifyChunk{from: from, to: min(from+verifyChunkSize, end), bad: -1, done: make(chan struct{})}
		select {
		case ordered <- c:
		case <-ctx.Done():
			return
		}
		jobs <- c
	}
}

func (vf *Verifier) chunkWorker(ctx context.Context, jobs <-chan *verifyChunk) {
	var h leafHasher
	mac := newRowMACer(vf.MACKey, vf.Chain)
	for c := range jobs {
		c.err = vf.readChunk(ctx, c, &h, mac)
		close(c.done)
	}
}

// readChunk hashes the chunk's rows straight from the driver's buffers.
// It first reads only the event and MAC columns and checks each row's MAC
// against the index its position implies: the primary key makes the rows
// of [from, to) exactly the indexes from..to-1 when there are to-from of
// them. If a MAC or the count does not match, the chunk is read again with
// its stored indexes, so a failure is told as precisely as before.
func (vf *Verifier) readChunk(ctx context.Context, c *verifyChunk, h *leafHasher, mac *rowMACer) error {
	ok, err := vf.readDense(ctx, c, h, mac)
	if err != nil || ok {
		return err
	}
	c.bad = -1
	return vf.readIndexed(ctx, c, h, mac)
}

// readDense reads the chunk assuming its indexes are from..to-1, and
// reports whether every row's MAC matched its position and none was missing.
func (vf *Verifier) readDense(ctx context.Context, c *verifyChunk, h *leafHasher, mac *rowMACer) (bool, error) {
	rows, err := vf.DB.Query(ctx, `SELECT event, mac FROM audit_events WHERE chain = ? AND idx >= ? AND idx < ? ORDER BY idx`,
		vf.Chain, int64(c.from), int64(c.to))
	if err != nil {
		return false, err
	}
	defer rows.Close()
	c.hashes = make([][32]byte, 0, c.to-c.from)
	var ev, m sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&ev, &m); err != nil {
			return false, err
		}
		sum := h.sum(ev)
		if !hmac.Equal(mac.mac(c.from+uint64(len(c.hashes)), sum[:]), m) {
			return false, nil
		}
		c.hashes = append(c.hashes, sum)
	}
	return uint64(len(c.hashes)) == c.to-c.from, rows.Err()
}

// readIndexed reads the chunk with each row's stored index.
func (vf *Verifier) readIndexed(ctx context.Context, c *verifyChunk, h *leafHasher, mac *rowMACer) error {
	rows, err := vf.DB.Query(ctx, `SELECT idx, event, mac FROM audit_events WHERE chain = ? AND idx >= ? AND idx < ? ORDER BY idx`,
		vf.Chain, int64(c.from), int64(c.to))
	if err != nil {
		return err
	}
	defer rows.Close()
	c.idx = make([]int64, 0, c.to-c.from)
	c.hashes = c.hashes[:0]
	var idx int64
	var ev, m sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&idx, &ev, &m); err != nil {
			return err
		}
		sum := h.sum(ev)
		if c.bad < 0 && !hmac.Equal(mac.mac(uint64(idx), sum[:]), m) {
			c.bad = len(c.idx)
		}
		c.idx = append(c.idx, idx)
		c.hashes = append(c.hashes, sum)
	}
	return rows.Err()
}

// fold checks order and MACs chunk by chunk, extends the tree and compares
// its root with each checkpoint as the tree reaches the checkpoint's size.
func (vf *Verifier) fold(res *Verification, cps []Checkpoint, ordered <-chan *verifyChunk) error {
	rng := (&compact.RangeFactory{Hash: hashChildren}).NewEmptyRange(0)
	next := 0 // next checkpoint to check
	for next < len(cps) && cps[next].Size == 0 {
		if !bytes.Equal(cps[next].Root, hasher.EmptyRoot()) {
			return res.mark(0, "the signed checkpoint of the empty log has a wrong root")
		}
		res.Checkpoints++
		next++
	}
	for c := range ordered {
		<-c.done
		if c.err != nil {
			return fmt.Errorf("read audit events: %w", c.err)
		}
		for i := range c.hashes {
			want := rng.End()
			if got := c.index(i); got != int64(want) {
				return res.mark(int64(want), fmt.Sprintf("event %d is missing (deleted), the next stored is %d", want, got))
			}
			if c.bad >= 0 && i >= c.bad {
				return res.mark(int64(want), "the event's content or position was changed, or it was inserted (its MAC does not match)")
			}
			rng.Append(c.hashes[i][:], nil)
			res.Events = rng.End()
			for next < len(cps) && cps[next].Size == rng.End() {
				root, _ := rng.GetRootHash(nil)
				if !bytes.Equal(root, cps[next].Root) {
					return res.mark(int64(rng.End()-1), fmt.Sprintf("the tree of %d events does not match its signed checkpoint", rng.End()))
				}
				res.Checkpoints++
				next++
			}
		}
		if want := rng.End(); want < c.to {
			return res.mark(int64(want), fmt.Sprintf("event %d is missing (deleted)", want))
		}
	}
	return nil
}
