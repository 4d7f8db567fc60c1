package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/phd"
)

// Sender is a device's link to its gateway: HTTPS over TLS 1.3, the
// device's certificate as client certificate, the gateway checked against
// the hospital's device CA.
type Sender struct {
	client *http.Client
	url    string
}

// NewSender returns a sender to the gateway at gatewayURL (https://host:port).
func NewSender(gatewayURL string, creds *devices.Credentials) *Sender {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: creds.Pool(), Certificates: []tls.Certificate{creds.TLSCertificate()}}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}
	return &Sender{client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		url: strings.TrimSuffix(gatewayURL, "/") + PathMessages}
}

// NewSenderWithClient returns a sender using client as it is (tests,
// custom transports).
func NewSenderWithClient(gatewayURL string, client *http.Client) *Sender {
	return &Sender{client: client, url: strings.TrimSuffix(gatewayURL, "/") + PathMessages}
}

// Refused is a gateway's refusal of a message.
type Refused struct {
	Status     int // HTTP status
	Reason     phd.Reason
	Detail     string
	RetryAfter time.Duration // for rate-limited and unavailable
}

func (e *Refused) Error() string {
	return fmt.Sprintf("gateway refused the message: %s: %s", e.Reason, e.Detail)
}

// Temporary reports whether sending the same message again later may
// succeed.
func (e *Refused) Temporary() bool {
	return e.Reason == ReasonRateLimited || e.Reason == ReasonUnavailable || e.Status >= 500
}

// Send posts one message and returns the gateway's acknowledgement or a
// *Refused.
func (s *Sender) Send(ctx context.Context, msg []byte) (Ack, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(msg))
	if err != nil {
		return Ack{}, err
	}
	req.Header.Set("Content-Type", `application/cose; cose-type="cose-sign1"`)
	resp, err := s.client.Do(req)
	if err != nil {
		return Ack{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
		var ack Ack
		err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ack)
		return ack, err
	}
	var ref devices.Refusal
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ref)
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return Ack{}, &Refused{Status: resp.StatusCode, Reason: ref.Reason, Detail: ref.Detail, RetryAfter: time.Duration(secs) * time.Second}
}

// SendReliably sends msg until the gateway acknowledges it, refuses it
// for good, or ctx ends. A lost connection or a temporary refusal is
// retried with the same bytes: the gateway acknowledges a redelivery
// again and queues it once.
func (s *Sender) SendReliably(ctx context.Context, msg []byte) (Ack, error) {
	wait := 50 * time.Millisecond
	for {
		ack, err := s.Send(ctx, msg)
		var ref *Refused
		if err == nil || (errors.As(err, &ref) && !ref.Temporary()) || ctx.Err() != nil {
			return ack, err
		}
		d := wait
		if ref != nil && ref.RetryAfter > d {
			d = ref.RetryAfter
		}
		sleep(ctx, jitter(d))
		wait = min(2*wait, 5*time.Second)
	}
}

// Close drops idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }
