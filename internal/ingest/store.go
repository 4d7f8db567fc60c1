package ingest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// storeTimeout cuts off one message's store attempt well inside the claim
// lease, so a claim older than the lease is surely abandoned.
const storeTimeout = 30 * time.Second

// outcome is what became of a claimed message.
type outcome struct {
	v       *verified
	result  Result
	settle  string // stateStored, stateRejected, or "" to release the claim
	pending bool   // the outcome is unknown: leave the claim for recovery
}

// storeAll stores the claimed messages one by one (the door writes each in
// its own transaction with its audit event), then records the outcomes in
// one ledger transaction.
func (in *Ingester) storeAll(ctx context.Context, gateway string, claimed []*verified, results []Result) {
	if len(claimed) == 0 {
		return
	}
	// Once claimed, a message is stored and settled even if the gateway
	// hangs up: stopping halfway would only leave claims to recover.
	ctx = context.WithoutCancel(ctx)
	outs := make([]outcome, len(claimed))
	for i, v := range claimed {
		outs[i] = in.store(ctx, gateway, v)
		results[v.index] = outs[i].result
	}
	if err := in.settle(ctx, outs); err != nil {
		// Stored messages stay claimed; recovery finds their audit events.
		in.cfg.Logger.Error("record device message outcomes", "err", err)
	}
	in.release(claimed)
	if in.cfg.Stored != nil {
		for _, o := range outs {
			if o.settle == stateStored {
				in.cfg.Stored(o.v.header)
			}
		}
	}
}

// store opens, assesses and stores one message.
func (in *Ingester) store(ctx context.Context, gateway string, v *verified) outcome {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	b, err := in.open(v)
	if err != nil {
		return in.refused(ctx, gateway, v, err)
	}
	a := phd.Assess(b, in.now(), in.cfg.Limits)
	patientID, err := in.cache.patient(ctx, in.cfg.Door, b.Patient)
	if err != nil {
		return in.failed(ctx, gateway, v, err, false)
	}
	recs, err := in.recordsOf(gateway, v, b, a)
	if err != nil {
		return in.failed(ctx, gateway, v, err, false)
	}
	if _, err := in.cfg.Door.AddRecords(ctx, in.request(gateway, v), patientID, recs); err != nil {
		return in.failed(ctx, gateway, v, err, true)
	}
	in.auditRefusedMeasurements(ctx, gateway, v, a)
	r := Result{Index: v.index, MessageID: v.header.MessageID.String(), Status: Stored,
		Readings: len(a.Readings), Flagged: a.Flagged(), Refused: len(a.Rejected)}
	return outcome{v: v, result: r, settle: stateStored}
}

func (in *Ingester) open(v *verified) (*phd.Batch, error) {
	kid, err := v.signed.RecipientKeyID()
	if err != nil {
		return nil, err
	}
	priv, ok := in.keys[hex.EncodeToString(kid)]
	if !ok {
		return nil, &phd.Error{Reason: phd.ReasonWrongRecipient, Detail: "the payload is encrypted to a key this hospital does not hold"}
	}
	return phd.Open(v.signed, priv)
}

// request is the door request of one message: the system principal
// "ingest", for treatment, its source naming the message and the gateway
// so that the audit event the door writes with the readings identifies the
// message (recovery relies on it).
func (in *Ingester) request(gateway string, v *verified) records.Request {
	who := identity.System("ingest")
	who.Source = sourceOf(v.header.MessageID, gateway)
	return records.Request{Who: who, Purpose: "TREAT"}
}

const sourcePrefix = "message:"

func sourceOf(id phd.MessageID, gateway string) string {
	return sourcePrefix + id.String() + " via gateway:" + gateway
}

// messageOfSource reads the message id back from an audit event's source.
func messageOfSource(src string) (phd.MessageID, bool) {
	rest, ok := strings.CutPrefix(src, sourcePrefix)
	if !ok {
		return phd.MessageID{}, false
	}
	hexID, _, _ := strings.Cut(rest, " ")
	id, err := phd.ParseMessageID(hexID)
	return id, err == nil
}

// refused is a message refused for good after it was claimed.
func (in *Ingester) refused(ctx context.Context, gateway string, v *verified, err error) outcome {
	r := in.refuse(ctx, gateway, v.index, v, err)
	if r.Status == Retry {
		return outcome{v: v, result: r}
	}
	return outcome{v: v, result: r, settle: stateRejected}
}

// failed sorts a storing error: the patient is gone (refused for good),
// the policy refused or nothing was attempted (release and retry; if the
// policy refused, an operator must act), or the door failed (outcome
// unknown: leave the claim to recovery).
func (in *Ingester) failed(ctx context.Context, gateway string, v *verified, err error, attempted bool) outcome {
	switch {
	case errors.Is(err, keys.ErrDestroyed):
		return in.refused(ctx, gateway, v, &phd.Error{Reason: ReasonPatientDestroyed, Detail: "the patient's data was destroyed; the device must be retired"})
	case phd.ReasonOf(err) != phd.ReasonInternal:
		return in.refused(ctx, gateway, v, err)
	case errors.Is(err, records.ErrDenied), errors.Is(err, records.ErrInvalid), errors.Is(err, records.ErrNotFound):
		in.cfg.Logger.Error("the door refused device readings; they stay queued at the gateway", "err", err)
		return outcome{v: v, result: retry(v, "the hospital could not store the readings now")}
	case !attempted:
		in.cfg.Logger.Error("prepare device readings", "err", err)
		return outcome{v: v, result: retry(v, "the hospital could not store the readings now")}
	}
	in.cfg.Logger.Error("store device readings", "err", err)
	return outcome{v: v, result: retry(v, "the hospital could not store the readings now"), pending: true}
}

// settle writes the outcomes into the ledger.
func (in *Ingester) settle(ctx context.Context, outs []outcome) error {
	now := in.now().UnixNano()
	return in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, o := range outs {
			if err := in.settleOne(ctx, tx, o, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func (in *Ingester) settleOne(ctx context.Context, tx *store.Tx, o outcome, now int64) error {
	id := o.v.header.MessageID[:]
	var err error
	switch {
	case o.pending:
		return nil
	case o.settle == "":
		_, err = tx.Exec(ctx, `DELETE FROM ingest_messages WHERE message_id = ? AND state = ? AND owner = ?`, id, statePending, in.owner)
	default:
		_, err = tx.Exec(ctx, `UPDATE ingest_messages SET state = ?, done_at = ?, readings = ?, refused = ?, reason = ? WHERE message_id = ?`,
			o.settle, now, o.result.Readings, o.result.Refused, string(o.result.Reason), id)
	}
	return err
}

// auditRefusedMeasurements writes one event naming the measurements of a
// stored message that were refused (their values never enter the log).
func (in *Ingester) auditRefusedMeasurements(ctx context.Context, gateway string, v *verified, a phd.Assessment) {
	if len(a.Rejected) == 0 {
		return
	}
	parts := make([]string, len(a.Rejected))
	for i, r := range a.Rejected {
		parts[i] = fmt.Sprintf("#%d %s", r.Index, r.Reason)
	}
	ev := audit.Event{Time: in.now(), Actor: "system:ingest", Action: "phd.measurement.refuse", Patient: v.header.Patient,
		Resource: "device/" + v.header.DeviceID, Outcome: audit.Denied, Source: sourceOf(v.header.MessageID, gateway),
		Reason: strings.Join(parts, "; ")}
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		in.cfg.Logger.Error("audit refused measurements", "err", err)
	}
}
