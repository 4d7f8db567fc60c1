package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/store"
)

// A refusal is recorded in the queue database before the device is
// answered, coalesced: one row per (subject, reason, minute) with a count,
// so a flood of bad messages adds to a count instead of rows. Limits keep
// a flood from many sources (addresses, throw-away certificates) bounded
// too: past maxNewRefusalRows new rows in one minute, or maxRefusalRows
// rows waiting for the hospital, further sources are counted in one row
// per (reason, minute) whose subject is ingest.SubjectMany.
const (
	maxNewRefusalRows = 60
	maxRefusalRows    = 10_000
	// refusalSettle: a row untouched this long (or from a past minute) is
	// sealed and sent; a row still counting a flood waits for its minute
	// to end.
	refusalSettle = time.Second
	refusalPoll   = 500 * time.Millisecond
)

// Refusal is one refused device message as the gateway records it: who
// (an ingest.Subject… string), why, when. It holds no patient data.
type Refusal struct {
	Subject string
	Reason  phd.Reason
	At      time.Time
}

// refusalSubject names who was refused: the device when its certificate
// verified (or verified but for its dates), else the fingerprint of the
// certificate presented, else the caller's address. An address is only
// used for callers without a certificate, so it is never tied to a patient.
func (g *Gateway) refusalSubject(r *http.Request, id devices.Identity, reason phd.Reason) string {
	if id.Kind == devices.KindDevice && id.Serial != "" {
		return ingest.SubjectDevice + id.Serial
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		return ingest.SubjectAddress + host
	}
	cert := r.TLS.PeerCertificates[0]
	if reason == devices.ReasonCertificateExpired {
		if id, err := g.verifier.Verify(cert, cert.NotAfter); err == nil && id.Kind == devices.KindDevice {
			return ingest.SubjectDevice + id.Serial
		}
	}
	return certificateSubject(cert)
}

func certificateSubject(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return ingest.SubjectCertificate + hex.EncodeToString(sum[:])
}

// recordRefusal makes the refusal durable in the queue database (it
// waits for the commit, as an acknowledgement does); failing that, the
// refusal is still answered, counted and logged.
func (g *Gateway) recordRefusal(r *http.Request, id devices.Identity, reason phd.Reason) {
	if reason == ReasonUnavailable {
		return // the gateway's own trouble, logged as an error
	}
	rf := Refusal{Subject: g.refusalSubject(r, id, reason), Reason: reason, At: g.now()}
	// Recorded even if the caller hung up: a refusal is a fact either way.
	if err := g.queue.RecordRefusal(context.WithoutCancel(r.Context()), rf); err != nil && !errors.Is(err, errQueueClosed) {
		g.cfg.Logger.Error("record a refusal for the hospital's audit log", "reason", string(reason), "err", err)
	}
}

// RecordRefusal adds rf to the count of its (subject, reason, minute) and
// returns once that is on disk.
func (q *Queue) RecordRefusal(ctx context.Context, rf Refusal) error {
	return q.submit(ctx, &enqueue{refusal: &rf, done: make(chan error, 1)})
}

// refusalCaps is the commit loop's view of the row limits.
type refusalCaps struct {
	rows      int64 // rows in the table, all states
	minute    int64
	newInMin  int
	rowsKnown bool
}

// writeRefusal counts rf in its open row, opening one (or counting it in
// the catch-all row when the limits are reached).
func (q *Queue) writeRefusal(ctx context.Context, tx *store.Tx, rf *Refusal) error {
	caps := &q.caps
	if !caps.rowsKnown {
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM refusals`).Scan(&caps.rows); err != nil {
			return fmt.Errorf("count refusal records: %w", err)
		}
		caps.rowsKnown = true
	}
	minute := rf.At.Unix() / 60
	if minute != caps.minute {
		caps.minute, caps.newInMin = minute, 0
	}
	subject := rf.Subject
	if ok, err := bumpRefusal(ctx, tx, subject, rf, minute); ok || err != nil {
		return err
	}
	if caps.newInMin >= maxNewRefusalRows || caps.rows >= maxRefusalRows {
		subject = ingest.SubjectMany
		if ok, err := bumpRefusal(ctx, tx, subject, rf, minute); ok || err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO refusals (record_id, subject, reason, minute, count, first_at, last_at) VALUES (?, ?, ?, ?, 1, ?, ?)`,
		newRecordID(), subject, string(rf.Reason), minute, rf.At.UnixNano(), rf.At.UnixNano())
	if err != nil {
		return fmt.Errorf("record refusal: %w", err)
	}
	caps.rows++
	caps.newInMin++
	return nil
}

func bumpRefusal(ctx context.Context, tx *store.Tx, subject string, rf *Refusal, minute int64) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE refusals SET count = count + 1, last_at = MAX(last_at, ?) WHERE subject = ? AND reason = ? AND minute = ? AND sealed = 0`,
		rf.At.UnixNano(), subject, string(rf.Reason), minute)
	if err != nil {
		return false, fmt.Errorf("count refusal: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func newRecordID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "rf_" + hex.EncodeToString(b)
}

// SealRefusals closes the rows that are done counting (untouched since
// refusalSettle before now, or from a past minute) and returns up to
// limit closed rows, oldest first. A closed row never changes again, so
// every delivery of it carries the same record.
func (q *Queue) SealRefusals(ctx context.Context, now time.Time, limit int) ([]ingest.RefusalRecord, error) {
	var out []ingest.RefusalRecord
	err := q.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE refusals SET sealed = 1 WHERE sealed = 0 AND (last_at < ? OR minute < ?)`,
			now.Add(-refusalSettle).UnixNano(), now.Unix()/60)
		if err != nil {
			return fmt.Errorf("seal refusal records: %w", err)
		}
		out, err = sealedRefusals(ctx, tx, limit)
		return err
	})
	return out, err
}

func sealedRefusals(ctx context.Context, tx *store.Tx, limit int) ([]ingest.RefusalRecord, error) {
	rows, err := tx.Query(ctx, `SELECT record_id, subject, reason, count, first_at, last_at FROM refusals WHERE sealed = 1 ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read refusal records: %w", err)
	}
	defer rows.Close()
	var out []ingest.RefusalRecord
	for rows.Next() {
		var rec ingest.RefusalRecord
		var reason string
		var first, last int64
		if err := rows.Scan(&rec.ID, &rec.Subject, &reason, &rec.Count, &first, &last); err != nil {
			return nil, err
		}
		rec.Reason, rec.First, rec.Last = phd.Reason(reason), time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, rec)
	}
	return out, rows.Err()
}

// DeleteRefusals drops records the hospital has answered for good.
func (q *Queue) DeleteRefusals(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return q.submit(ctx, &enqueue{drop: ids, done: make(chan error, 1)})
}

func (q *Queue) dropRefusals(ctx context.Context, tx *store.Tx, ids []string) error {
	for _, id := range ids {
		res, err := tx.Exec(ctx, `DELETE FROM refusals WHERE record_id = ?`, id)
		if err != nil {
			return fmt.Errorf("drop delivered refusal record: %w", err)
		}
		n, _ := res.RowsAffected()
		q.caps.rows -= n
	}
	return nil
}

// PendingRefusals counts the refusal records waiting for the hospital
// and the refusals they stand for.
func (q *Queue) PendingRefusals(ctx context.Context) (records int, refused int64, err error) {
	err = q.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(count), 0) FROM refusals`).Scan(&records, &refused)
	return records, refused, err
}

// PendingRefusals counts the refusal records waiting for the hospital
// and the refusals they stand for.
func (g *Gateway) PendingRefusals(ctx context.Context) (records int, refused int64, err error) {
	return g.queue.PendingRefusals(ctx)
}

// forwardRefusals sends closed refusal records to the hospital until ctx
// ends, backing off while it is unreachable; a record leaves the queue
// only once the hospital has answered it.
func (g *Gateway) forwardRefusals(ctx context.Context) {
	wait, lastLog := backoffMin, time.Time{}
	for ctx.Err() == nil {
		n, err := g.sendRefusals(ctx)
		switch {
		case err != nil:
			if time.Since(lastLog) > time.Minute && ctx.Err() == nil {
				g.cfg.Logger.Warn("refusal records not delivered to the hospital; retrying", "err", err)
				lastLog = time.Now()
			}
			sleep(ctx, jitter(wait))
			wait = min(2*wait, backoffMax)
		case n == 0:
			wait = backoffMin
			sleep(ctx, refusalPoll)
		default:
			wait = backoffMin
		}
	}
}

// sendRefusals delivers one batch and drops what the hospital settled.
func (g *Gateway) sendRefusals(ctx context.Context) (int, error) {
	recs, err := g.queue.SealRefusals(ctx, g.now(), ingest.MaxRefusalRecords)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	var ans ingest.RefusalAnswer
	if err := g.postJSON(ctx, ingest.PathRefusals, ingest.RefusalBatch{Records: recs}, &ans); err != nil {
		return 0, err
	}
	var done []string
	for _, r := range ans.Results {
		switch r.Status {
		case ingest.Stored, ingest.Duplicate:
			done = append(done, r.ID)
		case ingest.Rejected:
			g.cfg.Logger.Error("the hospital refused a refusal record", "id", r.ID, "detail", r.Detail)
			done = append(done, r.ID)
		}
	}
	if err := g.queue.DeleteRefusals(context.WithoutCancel(ctx), done); err != nil {
		return 0, fmt.Errorf("drop delivered refusal records: %w", err) // sent again: the hospital answers duplicate
	}
	if len(done) < len(recs) {
		return len(done), fmt.Errorf("the hospital settled %d of %d refusal records", len(done), len(recs))
	}
	return len(done), nil
}
