package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// DefaultMaxUploadBytes is the largest upload the import API takes when
// not told otherwise: a CD.
const DefaultMaxUploadBytes = 700 << 20

// DefaultUploadTimeout bounds one upload, from its first byte to the
// report: the server's own timeouts are for ordinary requests.
const DefaultUploadTimeout = 30 * time.Minute

// busyRetryAfter is the Retry-After, in seconds, of an upload refused
// while another is processed.
const busyRetryAfter = "30"

// APIOptions configure the import API.
type APIOptions struct {
	// Sessions turns a bearer token into the member of staff.
	Sessions *identity.Sessions
	// MaxBytes is the largest upload; DefaultMaxUploadBytes when 0. The
	// server must let bodies this large through to the API's mount.
	MaxBytes int64
	// Timeout bounds one upload; DefaultUploadTimeout when 0.
	Timeout time.Duration
	Logger  *slog.Logger
}

// API is the import API: POST /import?origin=TEXT&name=FILE with the
// raw file as the body (one DICOM file, a zip archive or an .iso image),
// imported by ImportUpload. The caller is a staff session (Authorization:
// Bearer <token>) whose role is in ImportRoles. The body is held in
// memory, never spooled to disk, and one upload is processed at a time:
// another gets 503 with Retry-After. The answer is the Report as JSON:
// 200 when nothing was quarantined, unreadable or failed, else 422 (the
// exit status 1 of `medsec import`).
type API struct {
	in   *Intake
	opt  APIOptions
	slot chan struct{}
}

// NewAPI returns the import API of an intake.
func NewAPI(in *Intake, opt APIOptions) *API {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxUploadBytes
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultUploadTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &API{in: in, opt: opt, slot: make(chan struct{}, 1)}
}

// MaxBytes is the largest upload the API takes.
func (a *API) MaxBytes() int64 { return a.opt.MaxBytes }

// Handler routes POST /import; mount it at /imaging.
func (a *API) Handler() http.Handler {
	r := chi.NewRouter()
	r.Post("/import", a.upload)
	return r
}

// apiError is a refusal with its status; msg is what a person reads and
// never holds PHI.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func refusal(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// upload refuses what it can before reading a byte of the body (the
// caller, the origin, the size, a busy intake), then reads the body and
// imports it.
func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	up, err := a.request(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	select {
	case a.slot <- struct{}{}:
		defer func() { <-a.slot }()
	default:
		w.Header().Set("Retry-After", busyRetryAfter)
		a.fail(w, r, refusal(http.StatusServiceUnavailable, "another upload is being imported; send this one again shortly"))
		return
	}
	a.extendDeadlines(w)
	if up.Body, err = a.readBody(r); err != nil {
		a.fail(w, r, err)
		return
	}
	defer clear(up.Body)
	rep, err := a.in.ImportUpload(r.Context(), up)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if rep.Quarantined+rep.Unreadable+rep.Failed > 0 {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, rep)
}

// request checks the caller, the query and the declared size.
func (a *API) request(r *http.Request) (UploadRequest, error) {
	who, err := a.caller(r)
	if err != nil {
		return UploadRequest{}, err
	}
	if err := a.in.checkImporter(r.Context(), who); err != nil {
		return UploadRequest{}, err
	}
	q := r.URL.Query()
	up := UploadRequest{Name: q.Get("name"), Origin: q.Get("origin"), Operator: who}
	if _, err := checkOrigin(up.Origin); err != nil {
		return up, refusal(http.StatusBadRequest, "say where the media came from in the origin query parameter (1 to %d printable characters), e.g. ?origin=CD+from+the+referring+clinic", maxReason)
	}
	if _, err := uploadName(up.Name); err != nil {
		return up, refusal(http.StatusBadRequest, "the name query parameter must be 1 to %d printable characters", maxUploadName)
	}
	switch {
	case r.ContentLength < 0:
		return up, refusal(http.StatusLengthRequired, "send the file with a Content-Length")
	case r.ContentLength == 0:
		return up, refusal(http.StatusBadRequest, "send the file (one DICOM file, a zip archive or an .iso image) as the request body")
	case r.ContentLength > a.opt.MaxBytes:
		return up, refusal(http.StatusRequestEntityTooLarge, "the upload of %d bytes is over the %d-byte limit; import larger media with medsec import", r.ContentLength, a.opt.MaxBytes)
	}
	return up, nil
}

// caller authenticates the staff session of the bearer token; a refusal
// is audited.
func (a *API) caller(r *http.Request) (identity.Principal, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return identity.Principal{}, a.unauthenticated(r, "send Authorization: Bearer <token> of a staff session (POST /fhir/auth/login)")
	}
	who, err := a.opt.Sessions.Authenticate(r.Context(), strings.TrimSpace(token), source(r))
	if err == nil {
		return who, nil
	}
	for _, e := range []error{identity.ErrInvalidToken, identity.ErrSessionExpired, identity.ErrSessionRevoked, identity.ErrMFARequired} {
		if errors.Is(err, e) {
			return who, a.unauthenticated(r, e.Error()+"; sign in again")
		}
	}
	return who, fmt.Errorf("authenticate the session: %w", err)
}

func (a *API) unauthenticated(r *http.Request, msg string) error {
	ev := audit.Event{Time: a.in.now(), Actor: "anonymous", Action: "imaging.import", Resource: "Import/" + MediaUpload,
		Outcome: audit.Denied, Source: source(r), Reason: "401 " + msg}
	if _, err := a.in.cfg.Audit.Append(r.Context(), ev); err != nil {
		return err
	}
	return refusal(http.StatusUnauthorized, "%s", msg)
}

// extendDeadlines gives the upload its own time to arrive and be
// imported; the server's read and write timeouts are for small requests.
func (a *API) extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	until := time.Now().Add(a.opt.Timeout)
	rc.SetReadDeadline(until) // ErrNotSupported in tests without a connection: the server's timeouts stand
	rc.SetWriteDeadline(until)
}

// readBody reads the declared length into memory, once.
func (a *API) readBody(r *http.Request) ([]byte, error) {
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, refusal(http.StatusRequestEntityTooLarge, "the upload is over the server's %d-byte limit for this route", tooLarge.Limit)
		}
		return nil, refusal(http.StatusBadRequest, "the upload ended after %d bytes (%v); send it again", r.ContentLength, err)
	}
	return body, nil
}

// fail answers a refusal or an error of the import itself. A bad file is
// never an error: it is an outcome in the report.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ErrNotImporter):
		ae = refusal(http.StatusForbidden, "%s", err.Error())
	case errors.Is(err, ErrInvalid):
		ae = refusal(http.StatusBadRequest, "%s", err.Error())
	case errors.Is(err, audit.ErrUnavailable), errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		ae = refusal(http.StatusServiceUnavailable, "the import cannot be recorded right now; send it again shortly")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; the import's record says it stopped
	default:
		a.opt.Logger.Error("imaging upload failed", "error", err)
		ae = refusal(http.StatusInternalServerError, "internal error; the security officer can find it in the server log")
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="medsec"`)
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// source is the client's address, for the audit log.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
