package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/sqlite"
)

// queueMigrations are the gateway's own schema, in its own SQLite file
// (WAL, full synchronous commits): the queue, the numbers each device used
// (to tell a redelivery from a reused number), the replay windows and the
// last status list; version 2 the refusal records waiting for the
// hospital's audit log (refusals.go).
var queueMigrations = []store.Migration{
	{Component: "gateway", Version: 1, Name: "queue", SQL: `CREATE TABLE queue (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		message_id BLOB NOT NULL,
		device TEXT NOT NULL,
		seq BIGINT NOT NULL,
		received_at BIGINT NOT NULL,
		body BLOB NOT NULL);
		CREATE TABLE seen (
		device TEXT NOT NULL,
		seq BIGINT NOT NULL,
		message_id BLOB NOT NULL,
		PRIMARY KEY (device, seq)) WITHOUT ROWID;
		CREATE TABLE windows (
		device TEXT PRIMARY KEY,
		state BLOB NOT NULL);
		CREATE TABLE status_list (
		id INTEGER PRIMARY KEY,
		body BLOB NOT NULL,
		sig BLOB NOT NULL)`},
	{Component: "gateway", Version: 2, Name: "refusal records", SQL: `CREATE TABLE refusals (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		record_id TEXT NOT NULL UNIQUE,
		subject TEXT NOT NULL,
		reason TEXT NOT NULL,
		minute BIGINT NOT NULL,
		count BIGINT NOT NULL,
		first_at BIGINT NOT NULL,
		last_at BIGINT NOT NULL,
		sealed INTEGER NOT NULL DEFAULT 0);
		CREATE UNIQUE INDEX refusals_open ON refusals (subject, reason, minute) WHERE sealed = 0`},
}

// errQueueClosed: the gateway is stopping; the device should retry.
var errQueueClosed = errors.New("gateway queue is closed")

// Queue is the gateway's durable store-and-forward queue.
type Queue struct {
	db      *store.DB
	writes  chan *enqueue
	stop    chan struct{}
	stopped chan struct{}
	notify  chan struct{} // a message was queued

	mu     sync.RWMutex
	closed bool

	caps refusalCaps // the commit loop's alone

	arriving atomic.Int64 // messages being checked before they are queued
}

// Queued is one message waiting for the hospital.
type Queued struct {
	ID       int64
	Message  phd.MessageID
	Device   string
	Seq      uint64
	Received time.Time
	Body     []byte
}

// enqueue is one write for the commit loop: a message with its window,
// a refusal to count, or delivered refusal records to drop.
type enqueue struct {
	item    Queued
	window  []byte // the device's replay window with this number marked
	refusal *Refusal
	drop    []string
	done    chan error
}

// maxGroup caps the messages of one group commit; maxLinger is the
// longest a commit waits for messages still being checked.
const (
	maxGroup  = 512
	maxLinger = 2 * time.Millisecond
)

// OpenQueue opens (creating) the queue in dir.
func OpenQueue(ctx context.Context, dir string) (*Queue, error) {
	db, err := sqlite.Open(ctx, filepath.Join(dir, "queue.db"), true)
	if err != nil {
		return nil, fmt.Errorf("open gateway queue: %w", err)
	}
	if err := db.Migrate(ctx, queueMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("open gateway queue: %w", err)
	}
	q := &Queue{db: db, writes: make(chan *enqueue, 4096), stop: make(chan struct{}), stopped: make(chan struct{}),
		notify: make(chan struct{}, 1)}
	go q.commitLoop()
	return q, nil
}

// Close stops the committer (after what is pending) and closes the file.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	<-q.stopped
	return q.db.Close()
}

// Enqueue makes the message and the device's new window durable together;
// it returns once they are on disk (so the device may be told).
func (q *Queue) Enqueue(ctx context.Context, item Queued, window []byte) error {
	return q.submit(ctx, &enqueue{item: item, window: window, done: make(chan error, 1)})
}

// submit hands e to the commit loop and waits for its commit.
func (q *Queue) submit(ctx context.Context, e *enqueue) error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return errQueueClosed
	}
	select {
	case q.writes <- e:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	return <-e.done // wait for the commit even if ctx ends: the answer must be true
}

// commitLoop writes queued messages in groups: one transaction (one
// fsync) for every message waiting, then every waiter is answered.
func (q *Queue) commitLoop() {
	defer close(q.stopped)
	group := make([]*enqueue, 0, maxGroup)
	for {
		select {
		case e := <-q.writes:
			group = q.fill(append(group[:0], e))
			group = q.linger(group)
			q.commit(group)
		case <-q.stop:
			for {
				group = q.fill(group[:0])
				if len(group) == 0 {
					return
				}
				q.commit(group)
			}
		}
	}
}

// linger holds a group open while messages are still being checked at
// the gateway (their signatures verified), at most maxLinger, so that one
// commit acknowledges them all instead of one commit each.
func (q *Queue) linger(group []*enqueue) []*enqueue {
	if q.arriving.Load() == 0 {
		return group
	}
	t := time.NewTimer(maxLinger)
	defer t.Stop()
	for len(group) < maxGroup && q.arriving.Load() > 0 {
		select {
		case e := <-q.writes:
			group = append(group, e)
		case <-t.C:
			return group
		}
	}
	return group
}

func (q *Queue) fill(group []*enqueue) []*enqueue {
	for len(group) < maxGroup {
		select {
		case e := <-q.writes:
			group = append(group, e)
		default:
			return group
		}
	}
	return group
}

func (q *Queue) commit(group []*enqueue) {
	err := q.db.ReadWriteTx(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		for _, e := range group {
			if err := q.write(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	for _, e := range group {
		e.done <- err
	}
	if err != nil {
		q.caps.rowsKnown = false // count the rows again after a rollback
	} else {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
}

func (q *Queue) write(ctx context.Context, tx *store.Tx, e *enqueue) error {
	switch {
	case e.refusal != nil:
		return q.writeRefusal(ctx, tx, e.refusal)
	case e.drop != nil:
		return q.dropRefusals(ctx, tx, e.drop)
	}
	return writeOne(ctx, tx, e)
}

func writeOne(ctx context.Context, tx *store.Tx, e *enqueue) error {
	it := e.item
	if _, err := tx.Exec(ctx, `INSERT INTO queue (message_id, device, seq, received_at, body) VALUES (?, ?, ?, ?, ?)`,
		it.Message[:], it.Device, int64(it.Seq), it.Received.UnixNano(), it.Body); err != nil {
		return fmt.Errorf("queue message: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT OR REPLACE INTO seen (device, seq, message_id) VALUES (?, ?, ?)`, it.Device, int64(it.Seq), it.Message[:]); err != nil {
		return fmt.Errorf("record sequence number: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT OR REPLACE INTO windows (device, state) VALUES (?, ?)`, it.Device, e.window)
	if err != nil {
		return fmt.Errorf("save replay window: %w", err)
	}
	return nil
}

// Window reads a device's persisted replay window (empty if none).
func (q *Queue) Window(ctx context.Context, device string) (phd.Window, error) {
	var w phd.Window
	var state []byte
	err := q.db.QueryRow(ctx, `SELECT state FROM windows WHERE device = ?`, device).Scan(&state)
	if errors.Is(err, store.ErrNotFound) {
		return w, nil
	}
	if err != nil {
		return w, fmt.Errorf("read replay window of %s: %w", device, err)
	}
	return w, w.UnmarshalBinary(state)
}

// Seen returns the message id a device sent with sequence number seq.
func (q *Queue) Seen(ctx context.Context, device string, seq uint64) (phd.MessageID, bool, error) {
	var id phd.MessageID
	var raw []byte
	err := q.db.QueryRow(ctx, `SELECT message_id FROM seen WHERE device = ? AND seq = ?`, device, int64(seq)).Scan(&raw)
	if errors.Is(err, store.ErrNotFound) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("read sequence number: %w", err)
	}
	copy(id[:], raw)
	return id, true, nil
}

// Next returns up to limit queued messages with id after after, oldest
// first, stopping before maxBytes of bodies.
func (q *Queue) Next(ctx context.Context, after int64, limit, maxBytes int) ([]Queued, error) {
	rows, err := q.db.Query(ctx, `SELECT id, message_id, device, seq, received_at, body FROM queue WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read queue: %w", err)
	}
	defer rows.Close()
	var out []Queued
	size := 0
	for rows.Next() {
		var it Queued
		var mid []byte
		var seq, recv int64
		if err := rows.Scan(&it.ID, &mid, &it.Device, &seq, &recv, &it.Body); err != nil {
			return nil, err
		}
		copy(it.Message[:], mid)
		it.Seq, it.Received = uint64(seq), time.Unix(0, recv)
		if size += len(it.Body); size > maxBytes && len(out) > 0 {
			break
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Delete removes delivered (or finally refused) messages.
func (q *Queue) Delete(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return q.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `DELETE FROM queue WHERE id = ?`, id); err != nil {
				return fmt.Errorf("delete delivered message: %w", err)
			}
		}
		return nil
	})
}

// Len counts the queued messages.
func (q *Queue) Len(ctx context.Context) (int, error) {
	var n int
	err := q.db.QueryRow(ctx, `SELECT COUNT(*) FROM queue`).Scan(&n)
	return n, err
}

// Prune forgets sequence numbers a device's window no longer covers.
func (q *Queue) Prune(ctx context.Context, device string, highest uint64) error {
	if highest <= phd.WindowSize {
		return nil
	}
	_, err := q.db.Exec(ctx, `DELETE FROM seen WHERE device = ? AND seq <= ?`, device, int64(highest-phd.WindowSize))
	return err
}

// SaveStatusList keeps the newest verified status list, so a restarted
// gateway refuses withdrawn devices even while the hospital is away.
func (q *Queue) SaveStatusList(ctx context.Context, body, sig []byte) error {
	_, err := q.db.Exec(ctx, `INSERT OR REPLACE INTO status_list (id, body, sig) VALUES (1, ?, ?)`, body, sig)
	return err
}

// StatusList returns the saved list (nil when none).
func (q *Queue) StatusList(ctx context.Context) (body, sig []byte, err error) {
	err = q.db.QueryRow(ctx, `SELECT body, sig FROM status_list WHERE id = 1`).Scan(&body, &sig)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	return body, sig, err
}
