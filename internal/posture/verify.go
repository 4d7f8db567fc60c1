package posture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/store"
)

// Migrations create the record of audit-log verifications.
var Migrations = []store.Migration{
	{Component: "posture", Version: 1, Name: "audit verifications", SQL: `CREATE TABLE posture_verifications (
		verified_at BIGINT NOT NULL,
		ok INTEGER NOT NULL,
		events BIGINT NOT NULL,
		checkpoint BIGINT NOT NULL,
		first_bad BIGINT NOT NULL,
		summary TEXT NOT NULL,
		verified_by TEXT NOT NULL);
		CREATE INDEX posture_verifications_at ON posture_verifications (verified_at)`},
}

// Prepare creates the posture tables when they do not exist yet.
func Prepare(ctx context.Context, db *store.DB) error {
	if err := db.Migrate(ctx, Migrations); err != nil {
		return fmt.Errorf("prepare posture tables: %w", err)
	}
	return nil
}

// ErrNeverVerified means no verification of the audit log was recorded.
// Run one (medsec check --verify, or the console's button).
var ErrNeverVerified = errors.New("the audit log has never been verified")

// Verified is a recorded verification of the audit log.
type Verified struct {
	At         time.Time `json:"at"`
	OK         bool      `json:"ok"`
	Events     uint64    `json:"events"`
	Checkpoint uint64    `json:"checkpoint"`
	FirstBad   int64     `json:"first_bad"`
	Summary    string    `json:"summary"`
	By         string    `json:"by"`
}

// Verify checks the whole audit log against its signed checkpoints and
// the index by patient against the events, signs a new checkpoint when it
// verified, and records the result (with an audit event, and an alert when
// it fails), so the posture check knows when the log last verified. by
// names who ran it (a staff id, "cli:…", "serve").
func Verify(ctx context.Context, h *hospital.Hospital, by string) (Verified, error) {
	if err := Prepare(ctx, h.DB); err != nil {
		return Verified{}, err
	}
	vf := h.Verifier()
	vf.Index = true // a read hidden from a patient's access history is tampering too
	v, err := vf.Verify(ctx)
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return Verified{}, err
	}
	// Sign a checkpoint only over a log that verified: one taken first
	// would vouch for whatever was changed since the last.
	if v.OK {
		if _, err := h.Audit.Checkpoint(ctx); err != nil {
			return Verified{}, err
		}
	}
	rec := Verified{At: time.Now(), OK: v.OK, Events: v.Events, Checkpoint: v.Checkpoint, FirstBad: v.FirstBad, Summary: v.Summary(), By: by}
	return rec, record(ctx, h, rec)
}

func record(ctx context.Context, h *hospital.Hospital, v Verified) error {
	outcome := audit.Success
	if !v.OK {
		outcome = audit.Failed
	}
	return h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO posture_verifications (verified_at, ok, events, checkpoint, first_bad, summary, verified_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			v.At.UnixNano(), boolInt(v.OK), int64(v.Events), int64(v.Checkpoint), v.FirstBad, v.Summary, v.By)
		if err != nil {
			return fmt.Errorf("record verification: %w", err)
		}
		if !v.OK {
			if _, err := h.Alerts.Raise(ctx, tx, alerts.Alert{Kind: alerts.KindVerify, Severity: alerts.Critical,
				Summary: "The audit log failed verification", Detail: v.Summary, Dedup: fmt.Sprintf("verify:%d", v.FirstBad)}); err != nil {
				return err
			}
		}
		_, err = h.Audit.AppendTx(ctx, tx, audit.Event{Time: v.At, Actor: v.By, Action: "audit.verify", Resource: "AuditLog/" + h.Config.Audit.Chain,
			Outcome: outcome, Reason: v.Summary})
		return err
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// LastVerification returns the newest recorded verification, or
// ErrNeverVerified.
func LastVerification(ctx context.Context, db *store.DB) (Verified, error) {
	if err := Prepare(ctx, db); err != nil {
		return Verified{}, err
	}
	var v Verified
	var at, events, cp int64
	var ok int
	err := db.QueryRow(ctx, `SELECT verified_at, ok, events, checkpoint, first_bad, summary, verified_by FROM posture_verifications ORDER BY verified_at DESC LIMIT 1`).
		Scan(&at, &ok, &events, &cp, &v.FirstBad, &v.Summary, &v.By)
	if errors.Is(err, store.ErrNotFound) {
		return Verified{}, ErrNeverVerified
	}
	if err != nil {
		return Verified{}, fmt.Errorf("read last verification: %w", err)
	}
	v.At, v.OK, v.Events, v.Checkpoint = time.Unix(0, at), ok == 1, uint64(events), uint64(cp)
	return v, nil
}

// SignedCheckpoint is the newest checkpoint in the checkpoint file, its
// signature checked with the audit log's verifier key.
type SignedCheckpoint struct {
	Size uint64    `json:"size"`
	At   time.Time `json:"at"` // when the file was last written
}

// tailBytes is how much of the checkpoint file's end is read: the newest
// line is all that is needed.
const tailBytes = 64 << 10

// LatestCheckpoint reads the newest signed checkpoint of the installation's
// chain from the checkpoint file kept outside the database, and checks its
// signature.
func LatestCheckpoint(h *hospital.Hospital) (SignedCheckpoint, error) {
	path := h.Config.Path(h.Config.Audit.CheckpointFile)
	f, err := os.Open(path)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("the checkpoint file %s cannot be read: %w", h.Config.Audit.CheckpointFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SignedCheckpoint{}, err
	}
	note, err := lastNote(f, st.Size(), h.Config.Audit.Chain)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	cp, err := audit.OpenCheckpoint(note, h.Verifier().NoteVerifier)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("the newest checkpoint in %s does not verify: %w", h.Config.Audit.CheckpointFile, err)
	}
	return SignedCheckpoint{Size: cp.Size, At: st.ModTime()}, nil
}

// lastNote finds the newest checkpoint note of chain in the file's tail.
// Each line is {"chain":…,"size":…,"note":…}.
func lastNote(r io.ReaderAt, size int64, chain string) (string, error) {
	off := max(0, size-tailBytes)
	buf := make([]byte, size-off)
	if _, err := r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	var note string
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 0, 4096), tailBytes)
	for sc.Scan() {
		var line struct {
			Chain string `json:"chain"`
			Note  string `json:"note"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Chain == chain && line.Note != "" {
			note = line.Note
		}
	}
	if note == "" {
		return "", errors.New("the checkpoint file holds no checkpoint of this log")
	}
	return note, nil
}
