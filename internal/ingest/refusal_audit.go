package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/store"
)

// alertReasons are the refusals that say someone is trying to pass as a
// device (or a withdrawn device is still in use); repeated, they raise an
// alert. Rate limits, replays, age and size are a device's faults, not an
// attack by themselves, and are only audited.
var alertReasons = []phd.Reason{phd.ReasonBadSignature, phd.ReasonBindingMismatch, phd.ReasonCertificateMismatch,
	devices.ReasonCertificateUntrusted, devices.ReasonCertificateMissing, devices.ReasonDeviceRevoked, devices.ReasonDeviceLost}

func (in *Ingester) serveRefusals(w http.ResponseWriter, r *http.Request) {
	gw, err := in.cfg.Authority.ActiveGateway(r.Context(), in.verifier, r)
	if err != nil {
		in.refuseGateway(r.Context(), w, r, err)
		return
	}
	b, err := decodeRefusals(r.Body)
	if err != nil {
		in.answerRefusal(w, err)
		return
	}
	res, err := in.RecordRefusals(r.Context(), gw.Serial, b.Records)
	if err != nil {
		in.answerRefusal(w, &phd.Error{Reason: phd.ReasonInternal, Detail: "the refusals could not be audited; send them again", Err: err})
		return
	}
	devices.WriteJSON(w, http.StatusOK, RefusalAnswer{Gateway: gw.Serial, Results: res})
}

// RecordRefusals audits the refusal records a gateway sent: one event per
// record not seen before (the ledger row and the event commit together,
// so a record posted again is answered Duplicate and audited once), and an
// alert when a subject keeps failing signature or certificate checks. An
// error means nothing was recorded; the gateway sends the batch again.
func (in *Ingester) RecordRefusals(ctx context.Context, gateway string, recs []RefusalRecord) ([]RefusalResult, error) {
	patients, err := in.refusalPatients(ctx, recs)
	if err != nil {
		return nil, err
	}
	var out []RefusalResult
	err = in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		out = make([]RefusalResult, len(recs))
		for i, rec := range recs {
			res, err := in.recordRefusal(ctx, tx, gateway, rec, patients[rec.DeviceSerial()])
			if err != nil {
				return err
			}
			out[i] = res
		}
		return nil
	})
	return out, err
}

// refusalPatients looks up the pseudonym of each enrolled device the
// records name, from the hospital's own registry (a gateway's word is
// not taken for whose device it is).
func (in *Ingester) refusalPatients(ctx context.Context, recs []RefusalRecord) (map[string]string, error) {
	out := map[string]string{}
	for _, rec := range recs {
		serial := rec.DeviceSerial()
		if _, done := out[serial]; done || serial == "" {
			continue
		}
		d, err := in.cfg.Authority.Device(ctx, serial)
		if err != nil && !errors.Is(err, devices.ErrUnknownDevice) {
			return nil, fmt.Errorf("look up device %s: %w", serial, err)
		}
		out[serial] = ""
		if err == nil && d.Kind == devices.KindDevice {
			out[serial] = d.Patient
		}
	}
	return out, nil
}

func (in *Ingester) recordRefusal(ctx context.Context, tx *store.Tx, gateway string, rec RefusalRecord, patient string) (RefusalResult, error) {
	res := RefusalResult{ID: rec.ID, Status: Rejected}
	if err := rec.check(); err != nil {
		res.Detail = err.Error()
		in.cfg.Logger.Warn("a gateway sent a malformed refusal record", "gateway", gateway, "id", rec.ID, "err", err)
		return res, nil
	}
	r, err := tx.Exec(ctx, `INSERT INTO ingest_refusals (gateway, record_id, subject, reason, count, minute, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway, record_id) DO NOTHING`,
		gateway, rec.ID, rec.Subject, string(rec.Reason), rec.Count, rec.First.Unix()/60, in.now().UnixNano())
	if err != nil {
		return res, fmt.Errorf("record refusal %s: %w", rec.ID, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		res.Status = Duplicate
		return res, nil
	}
	if _, err := in.cfg.Audit.AppendTx(ctx, tx, refusalEvent(in.now(), gateway, rec, patient)); err != nil {
		return res, err
	}
	res.Status = Stored
	return res, in.alertRefusals(ctx, tx, gateway, rec, patient)
}

// refusalEvent is the audit event of one record: the gateway refused
// these messages; who sent them as far as is known; why and how often.
func refusalEvent(now time.Time, gateway string, rec RefusalRecord, patient string) audit.Event {
	ev := audit.Event{Time: now, Actor: "gateway:" + gateway, Action: "gateway.refuse", Outcome: audit.Denied, Patient: patient,
		Reason: fmt.Sprintf("%s: %d %s refused by gateway %s from %s to %s (record %s)", rec.Reason, rec.Count, plural(rec.Count, "message"),
			gateway, rec.First.UTC().Format(time.RFC3339), rec.Last.UTC().Format(time.RFC3339), rec.ID)}
	if serial := rec.DeviceSerial(); serial != "" {
		ev.Resource = "device/" + serial
	} else {
		ev.Source = rec.Subject
	}
	return ev
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// alertRefusals raises one alert per subject and window when the
// subject's signature and certificate refusals in the window reach the
// threshold (the dedup key makes raising it again a no-op).
func (in *Ingester) alertRefusals(ctx context.Context, tx *store.Tx, gateway string, rec RefusalRecord, patient string) error {
	if in.cfg.Alerts == nil || !isAlertReason(rec.Reason) {
		return nil
	}
	span := max(1, int64(in.cfg.RefusalAlertWindow/time.Minute))
	last := rec.Last.Unix() / 60
	args := []any{rec.Subject, last - span}
	for _, r := range alertReasons {
		args = append(args, string(r))
	}
	var total int64
	err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(count), 0) FROM ingest_refusals WHERE subject = ? AND minute > ? AND reason IN (`+
		strings.TrimSuffix(strings.Repeat("?, ", len(alertReasons)), ", ")+`)`, args...).Scan(&total)
	if err != nil {
		return fmt.Errorf("count refusals of %s: %w", rec.Subject, err)
	}
	if total < int64(in.cfg.RefusalAlertThreshold) {
		return nil
	}
	_, err = in.cfg.Alerts.Raise(ctx, tx, refusalAlert(gateway, rec, patient, total, in.cfg.RefusalAlertWindow, last/span))
	return err
}

func refusalAlert(gateway string, rec RefusalRecord, patient string, total int64, window time.Duration, bucket int64) alerts.Alert {
	who := rec.Subject
	if serial := rec.DeviceSerial(); serial != "" {
		who = "device " + serial
	}
	a := alerts.Alert{Kind: alerts.KindAuthFailure, Severity: alerts.Warning, Subject: rec.Subject, Patient: patient,
		Summary: fmt.Sprintf("%s failed signature or certificate checks %d times within %s (latest at gateway %s: %s)", who, total, window, gateway, rec.Reason),
		Detail:  "a stolen, cloned or misconfigured device, or someone posing as one; check the device with its patient and revoke it if in doubt (medsec device revoke SERIAL --reason TEXT)",
		Dedup:   fmt.Sprintf("gateway-refuse:%s:%d", rec.Subject, bucket)}
	if serial := rec.DeviceSerial(); serial != "" {
		a.Resource = "device/" + serial
	}
	return a
}

func isAlertReason(r phd.Reason) bool {
	for _, a := range alertReasons {
		if a == r {
			return true
		}
	}
	return false
}

// pruneRefusals forgets refusal records older than the longest a gateway
// could still be sending them again (a month); the audit events stay.
func (in *Ingester) pruneRefusals(ctx context.Context) error {
	cutoff := in.now().Add(-30 * 24 * time.Hour).UnixNano()
	_, err := in.cfg.DB.Exec(ctx, `DELETE FROM ingest_refusals WHERE received_at < ?`, cutoff)
	return err
}

// RefusalsAudited is how many refused messages a gateway's records
// brought into the audit log (ledger row and audit event commit together).
func (in *Ingester) RefusalsAudited(ctx context.Context, gateway string) (int64, error) {
	var n int64
	err := in.cfg.DB.QueryRow(ctx, `SELECT COALESCE(SUM(count), 0) FROM ingest_refusals WHERE gateway = ?`, gateway).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count audited refusals of %s: %w", gateway, err)
	}
	return n, nil
}
