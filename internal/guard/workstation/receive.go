package workstation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/guard/agent"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// Errors of the alert endpoint, each with its HTTP status.
var (
	errNoCertificate = &httpError{http.StatusUnauthorized, "a workstation client certificate is required (medsec guard enroll)"}
	errNotEnrolled   = &httpError{http.StatusForbidden, "the client certificate is not an enrolled, unrevoked workstation's"}
)

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// maxBody bounds one delivery; MaxBatch alerts of bounded fields fit.
const maxBody = 4 << 20

// Limits on what a reported alert may carry.
const (
	maxField  = 4096
	maxReason = 2000
)

var reportID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Handler serves POST /alerts for agents, mounted under /guard by
// `medsec serve`. The caller is known only by a client certificate this
// CA issued to a workstation that is still enrolled.
func (r *Registry) Handler() http.Handler {
	mux := chi.NewRouter()
	mux.Post("/alerts", r.receive)
	return mux
}

func (r *Registry) receive(w http.ResponseWriter, req *http.Request) {
	name, err := r.identify(req)
	if err != nil {
		r.answer(w, req, name, err)
		return
	}
	batch, err := decodeBatch(w, req)
	if err != nil {
		r.answer(w, req, name, err)
		return
	}
	receipt, err := r.take(req.Context(), name, req.RemoteAddr, batch)
	if err != nil {
		r.answer(w, req, name, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(receipt)
}

// identify checks the client certificate against the CA and the registry
// and returns the workstation's name.
func (r *Registry) identify(req *http.Request) (string, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return "", errNoCertificate
	}
	leaf := req.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range req.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: r.roots, Intermediates: inter, CurrentTime: r.cfg.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return "", errNotEnrolled
	}
	name := leaf.Subject.CommonName
	var serial string
	var revoked *int64
	err = r.cfg.DB.QueryRow(req.Context(), `SELECT serial, revoked_at FROM workstations WHERE name = ?`, name).Scan(&serial, &revoked)
	if err != nil || revoked != nil || serial != leaf.SerialNumber.Text(16) {
		return name, errNotEnrolled
	}
	return name, nil
}

func decodeBatch(w http.ResponseWriter, req *http.Request) (agent.Batch, error) {
	var b agent.Batch
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, &httpError{http.StatusBadRequest, "alerts: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return b, &httpError{http.StatusBadRequest, "alerts: one JSON object expected"}
	}
	if len(b.Alerts) == 0 || len(b.Alerts) > agent.MaxBatch {
		return b, &httpError{http.StatusBadRequest, fmt.Sprintf("alerts: send 1 to %d alerts at once", agent.MaxBatch)}
	}
	for i, a := range b.Alerts {
		if err := checkReport(a); err != nil {
			return b, &httpError{http.StatusBadRequest, fmt.Sprintf("alert %d: %v", i, err)}
		}
	}
	return b, nil
}

func checkReport(a agent.Report) error {
	switch {
	case !reportID.MatchString(a.ID):
		return errors.New("id: 1-64 letters, digits, '_' or '-'")
	case a.Kind == "" || len(a.Kind) > 64:
		return errors.New("kind: 1-64 characters")
	case a.Severity < guard.Info || a.Severity > guard.Critical:
		return errors.New("severity out of range")
	case len(a.Reason) == 0 || len(a.Reason) > maxReason:
		return fmt.Errorf("reason: 1-%d bytes", maxReason)
	case len(a.Exe) > maxField || len(a.Path) > maxField || len(a.SHA256) > 64:
		return errors.New("exe, path or sha256 too long")
	case !utf8.ValidString(a.Reason + a.Exe + a.Path + string(a.Kind)):
		return errors.New("text is not UTF-8")
	}
	return nil
}

// take raises an alert and writes an audit event for each report not
// received before, in one transaction.
func (r *Registry) take(ctx context.Context, name, source string, b agent.Batch) (agent.Receipt, error) {
	var rc agent.Receipt
	err := r.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		rc = agent.Receipt{}
		for _, rep := range b.Alerts {
			a, err := r.inboxAlert(name, rep)
			if err != nil {
				return err
			}
			fresh, err := r.cfg.Alerts.Raise(ctx, tx, a)
			if err != nil {
				return err
			}
			if !fresh {
				rc.Duplicates++
				continue
			}
			rc.Accepted++
			if _, err := r.cfg.Audit.AppendTx(ctx, tx, r.alertEvent(name, source, rep)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE workstations SET last_seen = ? WHERE name = ?`, r.cfg.Now().UnixNano(), name)
		return err
	})
	return rc, err
}

// inboxAlert is a report as the officer's inbox shows it: the server's
// path-free description in the summary, the full report sealed in the
// detail (Registry.OpenReport).
func (r *Registry) inboxAlert(name string, rep agent.Report) (alerts.Alert, error) {
	detail, err := r.sealReport(name, rep)
	if err != nil {
		return alerts.Alert{}, err
	}
	return alerts.Alert{Kind: alerts.KindGuard, Severity: inboxSeverity(rep.Severity), Subject: "workstation:" + name,
		Summary: fmt.Sprintf("%s on workstation %s: %s", kindLabel(rep.Kind), name, r.describe(rep)), Detail: detail,
		Dedup: "guard:" + name + ":" + rep.ID}, nil
}

func inboxSeverity(s guard.Severity) string {
	switch {
	case s >= guard.High:
		return alerts.Critical
	case s == guard.Medium:
		return alerts.Warning
	}
	return alerts.Info
}

func (r *Registry) alertEvent(name, source string, rep agent.Report) audit.Event {
	return audit.Event{Time: r.cfg.Now(), Actor: "workstation:" + name, Role: identity.RoleSystem, Action: "guard.alert",
		Resource: "Workstation/" + name, Outcome: audit.Success, Source: source,
		Reason: fmt.Sprintf("%s: %s: %s (report %s)", kindLabel(rep.Kind), rep.Severity, r.describe(rep), rep.ID)}
}

// answer writes an error; refusals of a presented certificate are audited
// (a stolen or revoked workstation identity is worth a trace).
func (r *Registry) answer(w http.ResponseWriter, req *http.Request, name string, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{http.StatusServiceUnavailable, "alerts could not be stored; send them again"}
	}
	if he == errNotEnrolled {
		actor := "workstation:" + name
		if name == "" {
			actor = "workstation:unknown"
		}
		r.cfg.Audit.Append(req.Context(), audit.Event{Time: r.cfg.Now(), Actor: actor, Role: identity.RoleSystem, Action: "guard.alert",
			Resource: "Workstation/" + strings.TrimPrefix(actor, "workstation:"), Outcome: audit.Denied, Source: req.RemoteAddr, Reason: he.msg})
	}
	http.Error(w, he.msg, he.status)
}
