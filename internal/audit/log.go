package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/store"
)

// Migrations create the audit tables. Events of one chain are stored in
// index order; the head row holds the chain's size and Merkle frontier so
// any process can append without replaying the log.
var Migrations = []store.Migration{
	{Component: "audit", Version: 1, Name: "audit log", SQL: `CREATE TABLE audit_events (
		chain TEXT NOT NULL,
		idx BIGINT NOT NULL,
		event BLOB NOT NULL,
		mac BLOB NOT NULL,
		PRIMARY KEY (chain, idx)) WITHOUT ROWID;
		CREATE TABLE audit_heads (
		chain TEXT PRIMARY KEY,
		size BIGINT NOT NULL,
		frontier BLOB NOT NULL);
		CREATE TABLE audit_checkpoints (
		chain TEXT NOT NULL,
		size BIGINT NOT NULL,
		note TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (chain, size))`,
		Postgres: `CREATE TABLE audit_events (
		chain TEXT NOT NULL,
		idx BIGINT NOT NULL,
		event BYTEA NOT NULL,
		mac BYTEA NOT NULL,
		PRIMARY KEY (chain, idx));
		CREATE TABLE audit_heads (
		chain TEXT PRIMARY KEY,
		size BIGINT NOT NULL,
		frontier BYTEA NOT NULL);
		CREATE TABLE audit_checkpoints (
		chain TEXT NOT NULL,
		size BIGINT NOT NULL,
		note TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (chain, size))`},
	{Component: "audit", Version: 2, Name: "audit index by patient", SQL: patientIndexSQLite, Postgres: patientIndexPostgres},
}

// Config configures a Log.
type Config struct {
	Chain  string // "main" unless the log is sharded
	Signer *Signer
	MACKey []byte // 32-byte secret binding each row to its index
	// CheckpointFile receives every signed checkpoint, outside the
	// database. Required.
	CheckpointFile string
	// A checkpoint is signed after Every events or Interval, whichever
	// comes first, and at Close.
	Every    uint64
	Interval time.Duration
	// MaxBatch caps the events of one group commit.
	MaxBatch int
}

// Log appends to and checkpoints one chain of the audit log.
type Log struct {
	db  *store.DB
	cfg Config
	rf  *compact.RangeFactory

	reqs    chan *appendReq
	stop    chan struct{}
	stopped chan struct{}

	// indexKick wakes the patient indexer after a checkpoint; indexed is
	// closed when it has stopped.
	indexKick chan struct{}
	indexed   chan struct{}

	sendMu sync.RWMutex // held to send; Close takes it to stop new sends
	closed bool

	cpMu   sync.Mutex
	cpSize uint64 // size of the newest checkpoint this process knows
}

type appendReq struct {
	body []byte
	done chan appendRes
}

type appendRes struct {
	index uint64
	err   error
}

var hasher = rfc6962.DefaultHasher

// Open starts a Log on db. It writes a first checkpoint when the chain has
// none, so a deleted log is told apart from an empty one.
func Open(ctx context.Context, db *store.DB, cfg Config) (*Log, error) {
	if cfg.Chain == "" {
		cfg.Chain = "main"
	}
	if cfg.Signer == nil || len(cfg.MACKey) < 32 || cfg.CheckpointFile == "" {
		return nil, errors.New("open audit log: signer, 32-byte MAC key and checkpoint file are required")
	}
	if cfg.Every == 0 {
		cfg.Every = 10000
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 2000
	}
	l := &Log{db: db, cfg: cfg, rf: &compact.RangeFactory{Hash: hashChildren},
		reqs: make(chan *appendReq, 4096), stop: make(chan struct{}), stopped: make(chan struct{}),
		indexKick: make(chan struct{}, 1), indexed: make(chan struct{})}
	latest, err := l.latestStoredCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	l.cpSize = latest
	if _, err := l.Checkpoint(ctx); err != nil {
		return nil, err
	}
	l.kickIndexer() // an upgraded or restarted log may have a backlog
	go l.run()
	go l.indexPatients()
	return l, nil
}

// indexPatients is the background patient indexer: after each checkpoint
// it brings the index up to the head, off the append path, so the catch-up
// a patient query runs first has only the newest events to index. A failed
// run is left to the next one, or to the query's own catch-up.
func (l *Log) indexPatients() {
	defer close(l.indexed)
	for {
		select {
		case <-l.stop:
			return
		case <-l.indexKick:
			IndexPatients(context.Background(), l.db, l.cfg.Chain)
		}
	}
}

// kickIndexer asks the background indexer for a run, unless one is due.
func (l *Log) kickIndexer() {
	select {
	case l.indexKick <- struct{}{}:
	default:
	}
}

// Chain names the log's chain.
func (l *Log) Chain() string { return l.cfg.Chain }

// Append records e and returns its index once it is durable. If the event
// cannot be written, the error wraps ErrUnavailable and the caller must not
// go on with the access it records.
func (l *Log) Append(ctx context.Context, e Event) (uint64, error) {
	body, err := encodeBody(&e)
	if err != nil {
		return 0, err
	}
	req := &appendReq{body: body, done: make(chan appendRes, 1)}
	l.sendMu.RLock()
	if l.closed {
		l.sendMu.RUnlock()
		return 0, fmt.Errorf("%w: the log is closed", ErrUnavailable)
	}
	select {
	case l.reqs <- req:
		l.sendMu.RUnlock()
	case <-ctx.Done():
		l.sendMu.RUnlock()
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	// The request is queued: wait for its commit even if ctx ends, so the
	// caller never believes an event is missing that is in fact stored.
	res := <-req.done
	return res.index, res.err
}

// AppendTx records events inside the caller's transaction, for changes
// whose data and audit event must commit together.
func (l *Log) AppendTx(ctx context.Context, tx *store.Tx, events ...Event) ([]uint64, error) {
	bodies := make([][]byte, len(events))
	for i := range events {
		b, err := encodeBody(&events[i])
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	first, err := l.appendInTx(ctx, tx, bodies)
	if err != nil {
		return nil, err
	}
	idx := make([]uint64, len(events))
	for i := range idx {
		idx[i] = first + uint64(i)
	}
	return idx, nil
}

// run is the group committer: it takes every queued request, writes them
// in one transaction, and answers them all after the commit.
func (l *Log) run() {
	defer close(l.stopped)
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	batch := make([]*appendReq, 0, l.cfg.MaxBatch)
	for {
		select {
		case <-l.stop:
			l.drain(batch[:0])
			return
		case <-tick.C:
			l.Checkpoint(context.Background())
		case r := <-l.reqs:
			batch = l.fill(append(batch[:0], r))
			l.commit(batch)
		}
	}
}

func (l *Log) fill(batch []*appendReq) []*appendReq {
	for len(batch) < l.cfg.MaxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// drain commits what is queued when the log closes.
func (l *Log) drain(batch []*appendReq) {
	for {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			if len(batch) > 0 {
				l.commit(batch)
			}
			return
		}
	}
}

func (l *Log) commit(batch []*appendReq) {
	bodies := make([][]byte, len(batch))
	for i, r := range batch {
		bodies[i] = r.body
	}
	ctx := context.Background()
	var first uint64
	err := l.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		first, err = l.appendInTx(ctx, tx, bodies)
		return err
	})
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for i, r := range batch {
		r.done <- appendRes{index: first + uint64(i), err: err}
	}
	if err == nil && first+uint64(len(batch)) >= l.checkpointSize()+l.cfg.Every {
		l.Checkpoint(ctx)
	}
}

// appendInTx assigns the next indexes, writes the rows and moves the head.
// The chain lock makes it safe from several processes.
func (l *Log) appendInTx(ctx context.Context, tx *store.Tx, bodies [][]byte) (uint64, error) {
	if err := tx.LockChain(ctx, l.cfg.Chain); err != nil {
		return 0, fmt.Errorf("lock audit chain: %w", err)
	}
	rng, err := l.head(ctx, tx)
	if err != nil {
		return 0, err
	}
	first := rng.End()
	mac := newRowMACer(l.cfg.MACKey, l.cfg.Chain)
	// One slab each for the leaf hashes (the tree keeps some of them) and
	// the MACs (the driver reads them at Exec), instead of two allocations
	// per event; the chain is boxed into an argument once.
	hashes := make([]byte, sha256.Size*len(bodies))
	macs := make([]byte, sha256.Size*len(bodies))
	var chain any = l.cfg.Chain
	const cols, perStmt = 4, 200
	args := make([]any, 0, cols*perStmt)
	// A batch of several full statements parses the full one once.
	var full *store.TxStmt
	if len(bodies) >= 2*perStmt {
		if full, err = tx.Prepare(ctx, `INSERT INTO audit_events (chain, idx, event, mac) VALUES `+store.Placeholders(perStmt, cols)); err != nil {
			return 0, fmt.Errorf("write audit events: %w", err)
		}
	}
	for i, body := range bodies {
		idx := first + uint64(i)
		in := withIndex(body, idx) // 0x00 || leaf
		lh := hashes[i*sha256.Size : (i+1)*sha256.Size : (i+1)*sha256.Size]
		leafHash(lh, in)
		if err := rng.Append(lh, nil); err != nil {
			return 0, fmt.Errorf("extend audit tree: %w", err)
		}
		m := macs[i*sha256.Size : (i+1)*sha256.Size : (i+1)*sha256.Size]
		copy(m, mac.mac(idx, lh))
		args = append(args, chain, int64(idx), in[1:], m)
		if len(args) == cols*perStmt || i == len(bodies)-1 {
			n := len(args) / cols
			var err error
			if n == perStmt && full != nil {
				_, err = full.Exec(ctx, args...)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO audit_events (chain, idx, event, mac) VALUES `+store.Placeholders(n, cols), args...)
			}
			if err != nil {
				return 0, fmt.Errorf("write audit events: %w", err)
			}
			args = args[:0]
		}
	}
	_, err = tx.Exec(ctx, `UPDATE audit_heads SET size = ?, frontier = ? WHERE chain = ?`,
		int64(rng.End()), packFrontier(rng.Hashes()), l.cfg.Chain)
	if err != nil {
		return 0, fmt.Errorf("move audit head: %w", err)
	}
	return first, nil
}

// head reads the chain's head row, creating it for a new chain.
func (l *Log) head(ctx context.Context, tx *store.Tx) (*compact.Range, error) {
	var size int64
	var frontier []byte
	err := tx.QueryRow(ctx, `SELECT size, frontier FROM audit_heads WHERE chain = ?`, l.cfg.Chain).Scan(&size, &frontier)
	if errors.Is(err, store.ErrNotFound) {
		_, err = tx.Exec(ctx, `INSERT INTO audit_heads (chain, size, frontier) VALUES (?, 0, ?)`, l.cfg.Chain, []byte{})
		return l.rf.NewEmptyRange(0), err
	}
	if err != nil {
		return nil, fmt.Errorf("read audit head: %w", err)
	}
	hashes, err := unpackFrontier(frontier)
	if err != nil {
		return nil, err
	}
	rng, err := l.rf.NewRange(0, uint64(size), hashes)
	if err != nil {
		return nil, fmt.Errorf("audit head of %d events is damaged: %w", size, err)
	}
	return rng, nil
}

func packFrontier(hashes [][]byte) []byte {
	out := make([]byte, 0, 32*len(hashes))
	for _, h := range hashes {
		out = append(out, h...)
	}
	return out
}

func unpackFrontier(b []byte) ([][]byte, error) {
	if len(b)%32 != 0 {
		return nil, fmt.Errorf("%w: audit head frontier has %d bytes", ErrTampered, len(b))
	}
	hashes := make([][]byte, 0, len(b)/32)
	for i := 0; i < len(b); i += 32 {
		hashes = append(hashes, b[i:i+32])
	}
	return hashes, nil
}

// Close commits what is queued, signs a final checkpoint and stops the
// committer.
func (l *Log) Close(ctx context.Context) error {
	l.sendMu.Lock()
	if l.closed {
		l.sendMu.Unlock()
		return nil
	}
	l.closed = true
	l.sendMu.Unlock()
	close(l.stop)
	<-l.stopped
	<-l.indexed
	_, err := l.Checkpoint(ctx)
	return err
}

var _ note.Signer = (*Signer)(nil)
