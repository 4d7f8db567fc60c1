package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/phd"
)

// Ack is the gateway's answer to an accepted message.
type Ack struct {
	Status    string `json:"status"` // "queued", or "duplicate" for a message acknowledged before
	MessageID string `json:"message_id"`
	Seq       uint64 `json:"seq"`
}

// Statuses of an Ack.
const (
	AckQueued    = "queued"
	AckDuplicate = "duplicate"
)

// ReasonRateLimited: the device sends faster than the gateway allows; it
// should wait Retry-After seconds.
const ReasonRateLimited phd.Reason = "rate-limited"

// ReasonUnavailable: the gateway could not queue the message (stopping,
// disk trouble); send it again later.
const ReasonUnavailable phd.Reason = "unavailable"

// accept takes one device message: who (certificate, status), what (parse,
// binding, rate, signature, age), whether new (replay window), durably
// queued — and only then acknowledged. A refusal is recorded durably too
// (refusals.go), for the hospital's audit log.
func (g *Gateway) accept(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id, err := g.device(r)
	var ack Ack
	if err == nil {
		ack, err = g.admit(r, id)
	}
	if err != nil {
		g.refuse(w, r, id, err)
		return
	}
	status := http.StatusAccepted
	if ack.Status == AckDuplicate {
		status = http.StatusOK
		g.metrics.duplicates.Inc()
	} else {
		g.metrics.accepted.Inc()
	}
	g.metrics.acceptLatency.Observe(time.Since(start).Seconds())
	devices.WriteJSON(w, status, ack)
}

func (g *Gateway) admit(r *http.Request, id devices.Identity) (Ack, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(g.cfg.Limits.MaxMessageBytes)+1))
	if err != nil {
		return Ack{}, &phd.Error{Reason: phd.ReasonMalformed, Detail: "the message could not be read"}
	}
	s, err := phd.ParseSigned(body, g.cfg.Limits)
	if err != nil {
		return Ack{}, err
	}
	h := s.Header()
	if err := h.CheckBinding(id.Serial, id.Patient); err != nil {
		return Ack{}, err
	}
	if ok, wait := g.limiter.allow(id.Serial, g.now()); !ok {
		return Ack{}, &rateLimited{wait: wait}
	}
	if err := g.check(s, id, h); err != nil {
		return Ack{}, err
	}
	return g.enqueue(r.Context(), h, body)
}

// check verifies the signature and the send time. While it runs the queue
// counts the message as arriving, so a commit waits for it (queue.linger).
func (g *Gateway) check(s *phd.Signed, id devices.Identity, h phd.Header) error {
	g.queue.arriving.Add(1)
	defer g.queue.arriving.Add(-1)
	if err := s.Verify(id.PublicKey); err != nil {
		return err
	}
	return g.cfg.Limits.CheckSent(h.Time, g.now())
}

// device verifies the client certificate (once per certificate; its
// validity is checked on every message) and the device's status.
func (g *Gateway) device(r *http.Request) (devices.Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return devices.Identity{}, &phd.Error{Reason: devices.ReasonCertificateMissing, Detail: "present the device certificate the hospital issued"}
	}
	cert := r.TLS.PeerCertificates[0]
	id, err := g.verified(cert)
	if err != nil {
		return id, err
	}
	if id.Kind != devices.KindDevice {
		return id, &phd.Error{Reason: devices.ReasonCertificateUntrusted, Detail: "the certificate is not a personal health device's"}
	}
	if st := g.statuses.Load().status[id.Serial]; st != "" {
		return id, &phd.Error{Reason: st.Refusal(), Detail: fmt.Sprintf("device %s is %s; contact the hospital", id.Serial, st)}
	}
	return id, nil
}

func (g *Gateway) verified(cert *x509.Certificate) (devices.Identity, error) {
	key := sha256.Sum256(cert.Raw)
	now := g.now()
	g.idMu.Lock()
	id, ok := g.ids[key]
	g.idMu.Unlock()
	if ok && now.Before(cert.NotAfter) && !now.Before(cert.NotBefore) {
		return id, nil
	}
	id, err := g.verifier.Verify(cert, now)
	if err != nil {
		return id, err
	}
	g.idMu.Lock()
	if len(g.ids) > 100_000 {
		clear(g.ids)
	}
	g.ids[key] = id
	g.idMu.Unlock()
	return id, nil
}

// deviceWindow is one device's replay window, loaded from the queue on
// first use; its lock is held from the check until the message is durable,
// so two copies of one message cannot both be queued.
type deviceWindow struct {
	mu     sync.Mutex
	loaded bool
	w      phd.Window
}

func (g *Gateway) window(device string) *deviceWindow {
	g.winMu.Lock()
	defer g.winMu.Unlock()
	dw, ok := g.windows[device]
	if !ok {
		dw = &deviceWindow{}
		g.windows[device] = dw
	}
	return dw
}

// enqueue applies the replay window and queues a new message durably. A
// number seen before is acknowledged again if it carries the same message
// (the device missed the first acknowledgement) and refused otherwise.
func (g *Gateway) enqueue(ctx context.Context, h phd.Header, body []byte) (Ack, error) {
	dw := g.window(h.DeviceID)
	dw.mu.Lock()
	defer dw.mu.Unlock()
	if !dw.loaded {
		w, err := g.queue.Window(ctx, h.DeviceID)
		if err != nil {
			return Ack{}, unavailable(err)
		}
		dw.w, dw.loaded = w, true
	}
	ack := Ack{Status: AckQueued, MessageID: h.MessageID.String(), Seq: h.Seq}
	switch dw.w.Check(h.Seq) {
	case phd.SeqTooOld:
		return Ack{}, &phd.Error{Reason: phd.ReasonReplayTooOld, Detail: fmt.Sprintf("sequence number %d is older than the replay window (highest %d)", h.Seq, dw.w.Highest())}
	case phd.SeqDuplicate:
		return g.repeat(ctx, h, ack)
	}
	next := dw.w
	next.Mark(h.Seq)
	state, _ := next.MarshalBinary()
	item := Queued{Message: h.MessageID, Device: h.DeviceID, Seq: h.Seq, Received: g.now(), Body: body}
	if err := g.queue.Enqueue(ctx, item, state); err != nil {
		return Ack{}, unavailable(err)
	}
	dw.w = next
	g.metrics.queued.Set(float64(g.queued.Add(1)))
	if h.Seq%phd.WindowSize == 0 {
		g.queue.Prune(ctx, h.DeviceID, h.Seq)
	}
	return ack, nil
}

func (g *Gateway) repeat(ctx context.Context, h phd.Header, ack Ack) (Ack, error) {
	id, ok, err := g.queue.Seen(ctx, h.DeviceID, h.Seq)
	if err != nil {
		return Ack{}, unavailable(err)
	}
	if !ok || id != h.MessageID {
		return Ack{}, &phd.Error{Reason: phd.ReasonReplayDuplicate,
			Detail: fmt.Sprintf("sequence number %d was used by another message; the device's counter is broken", h.Seq)}
	}
	ack.Status = AckDuplicate
	return ack, nil
}

func unavailable(err error) error {
	return &phd.Error{Reason: ReasonUnavailable, Detail: "the gateway could not queue the message; send it again later", Err: err}
}

type rateLimited struct{ wait time.Duration }

func reasonOf(err error) phd.Reason {
	if _, ok := err.(*rateLimited); ok {
		return ReasonRateLimited
	}
	return phd.ReasonOf(err)
}

func peerName(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return r.TLS.PeerCertificates[0].Subject.CommonName
}

func (e *rateLimited) Error() string { return "rate limited" }

// refuse answers a refused message with its reason, counts it, logs it
// and records it for the hospital's audit log (no PHI: a device serial or
// certificate fingerprint or address, a reason, a time).
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, id devices.Identity, err error) {
	g.cfg.Logger.Warn("refused a device message", "reason", string(reasonOf(err)), "device", peerName(r), "remote", r.RemoteAddr)
	g.recordRefusal(r, id, reasonOf(err))
	if rl, ok := err.(*rateLimited); ok {
		g.metrics.rejected.WithLabelValues(string(ReasonRateLimited)).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(rl.wait.Seconds()+0.999))))
		devices.WriteJSON(w, http.StatusTooManyRequests, devices.Refusal{Reason: ReasonRateLimited,
			Detail: "the device sends faster than this gateway allows; wait and send again"})
		return
	}
	reason := phd.ReasonOf(err)
	g.metrics.rejected.WithLabelValues(string(reason)).Inc()
	status, ref := devices.RefusalOf(err)
	switch reason {
	case ReasonUnavailable:
		status = http.StatusServiceUnavailable
		g.cfg.Logger.Error("queue a device message", "err", err)
	case phd.ReasonReplayDuplicate, phd.ReasonReplayTooOld:
		status = http.StatusConflict
	}
	devices.WriteJSON(w, status, ref)
}
