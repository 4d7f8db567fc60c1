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

// Group bounds: the messages of one patient in one bundle are stored in
// one door transaction (one commit, one audit event naming every message),
// at most this many at a time.
const (
	maxGroupMessages = 64
	maxGroupRecords  = 4096
)

// prepared is a claimed message opened, assessed and turned into records.
type prepared struct {
	v       *verified
	a       phd.Assessment
	patient string
	recs    []records.Record
}

// storeAll opens and assesses the claimed messages, stores them grouped by
// patient (the door writes each group in one transaction with one audit
// event), then records every outcome in one ledger transaction.
func (in *Ingester) storeAll(ctx context.Context, gateway string, claimed []*verified, results []Result) {
	if len(claimed) == 0 {
		return
	}
	// Once claimed, a message is stored and settled even if the gateway
	// hangs up: stopping halfway would only leave claims to recover.
	ctx = context.WithoutCancel(ctx)
	var outs []outcome
	var ready []*prepared
	for _, v := range claimed {
		p, out := in.prepare(ctx, gateway, v)
		if p == nil {
			outs = append(outs, out)
			continue
		}
		ready = append(ready, p)
	}
	outs = append(outs, in.storeGroups(ctx, gateway, groupByPatient(ready))...)
	for _, o := range outs {
		results[o.v.index] = o.result
	}
	if err := in.settle(ctx, outs); err != nil {
		// Stored messages stay claimed; recovery finds their audit events.
		in.cfg.Logger.Error("record device message outcomes", "err", err)
	}
	in.release(claimed)
	in.notifyStored(outs)
}

func (in *Ingester) notifyStored(outs []outcome) {
	if in.cfg.Stored == nil {
		return
	}
	for _, o := range outs {
		if o.settle == stateStored {
			in.cfg.Stored(o.v.header)
		}
	}
}

// prepare opens and assesses one message and builds its records; a
// message that cannot be stored gets its outcome instead.
func (in *Ingester) prepare(ctx context.Context, gateway string, v *verified) (*prepared, outcome) {
	b, err := in.open(v)
	if err != nil {
		return nil, in.refused(ctx, gateway, v, err)
	}
	p := &prepared{v: v, a: phd.Assess(b, in.now(), in.cfg.Limits)}
	if p.patient, err = in.cache.patient(ctx, in.cfg.Door, b.Patient); err != nil {
		return nil, in.failed(ctx, gateway, v, err, false)
	}
	if p.recs, err = in.recordsOf(gateway, v, b, p.a); err != nil {
		return nil, in.failed(ctx, gateway, v, err, false)
	}
	return p, outcome{}
}

// groupByPatient splits ready into per-patient groups within the bounds,
// keeping arrival order inside each group.
func groupByPatient(ready []*prepared) [][]*prepared {
	var groups [][]*prepared
	open := map[string]int{} // patient → index of its group being filled
	size := map[int]int{}
	for _, p := range ready {
		i, ok := open[p.patient]
		if !ok || len(groups[i]) == maxGroupMessages || size[i]+len(p.recs) > maxGroupRecords {
			i = len(groups)
			groups = append(groups, nil)
			open[p.patient] = i
		}
		groups[i] = append(groups[i], p)
		size[i] += len(p.recs)
	}
	return groups
}

// storeGroups stores every patient's group of messages through the door in
// one transaction: one decision and one audit event per group, one commit
// for all of them.
func (in *Ingester) storeGroups(ctx context.Context, gateway string, groups [][]*prepared) []outcome {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	batches := make([]records.Batch, len(groups))
	for i, g := range groups {
		ids := make([]phd.MessageID, len(g))
		var recs []records.Record
		for j, p := range g {
			recs = append(recs, p.recs...)
			ids[j] = p.v.header.MessageID
		}
		batches[i] = records.Batch{Request: in.request(gateway, ids), PatientID: g[0].patient, Records: recs}
	}
	var outs []outcome
	for i, r := range in.cfg.Door.AddRecordsBulk(ctx, batches) {
		outs = append(outs, in.groupOutcomes(ctx, gateway, groups[i], r.Err)...)
	}
	return outs
}

// groupOutcomes answers each message of a group by the group's outcome.
func (in *Ingester) groupOutcomes(ctx context.Context, gateway string, g []*prepared, err error) []outcome {
	outs := make([]outcome, len(g))
	for i, p := range g {
		if err != nil {
			outs[i] = in.failed(ctx, gateway, p.v, err, true)
			continue
		}
		in.auditRefusedMeasurements(ctx, gateway, p.v, p.a)
		r := Result{Index: p.v.index, MessageID: p.v.header.MessageID.String(), Status: Stored,
			Readings: len(p.a.Readings), Flagged: p.a.Flagged(), Refused: len(p.a.Rejected)}
		outs[i] = outcome{v: p.v, result: r, settle: stateStored}
	}
	return outs
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

// request is the door request of a group of messages: the system
// principal "ingest", for treatment, its source naming the messages and
// the gateway, so that the audit event the door writes with the readings
// identifies the messages (recovery relies on it).
func (in *Ingester) request(gateway string, ids []phd.MessageID) records.Request {
	who := identity.System("ingest")
	who.Source = sourceOf(ids, gateway)
	return records.Request{Who: who, Purpose: "TREAT"}
}

const sourcePrefix = "message:"

// sourceOf is "message:ID[,ID…] via gateway:NAME".
func sourceOf(ids []phd.MessageID, gateway string) string {
	var b strings.Builder
	b.WriteString(sourcePrefix)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id.String())
	}
	b.WriteString(" via gateway:" + gateway)
	return b.String()
}

// messagesOfSource reads the message ids back from an audit event's source.
func messagesOfSource(src string) []phd.MessageID {
	rest, ok := strings.CutPrefix(src, sourcePrefix)
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, " ")
	var out []phd.MessageID
	for _, h := range strings.Split(list, ",") {
		if id, err := phd.ParseMessageID(h); err == nil {
			out = append(out, id)
		}
	}
	return out
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
		Resource: "device/" + v.header.DeviceID, Outcome: audit.Denied, Source: sourceOf([]phd.MessageID{v.header.MessageID}, gateway),
		Reason: strings.Join(parts, "; ")}
	if _, err := in.cfg.Audit.Append(ctx, ev); err != nil {
		in.cfg.Logger.Error("audit refused measurements", "err", err)
	}
}
