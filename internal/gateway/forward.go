package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/ingest"
)

// Backoff bounds between failed deliveries.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
	// maxBundleBytes keeps a delivery well inside the server's request limit.
	maxBundleBytes = 4 << 20
)

// upstreamClient talks to the hospital over mutual TLS: TLS 1.3, the
// hospital's roots, the gateway's current certificate.
func (g *Gateway) upstreamClient() *http.Client {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    g.cfg.UpstreamRoots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return g.cert.Load(), nil
		},
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 8,
		IdleConnTimeout: time.Minute, ResponseHeaderTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// maxRetryRounds bounds how often a worker sends again the messages the
// hospital answered "retry" before it leaves them in the queue for a later
// pass, so a message the hospital cannot take now never holds up the rest.
const maxRetryRounds = 6

// forward reads the queue in order and hands bundles to the workers; each
// worker owns its bundle until the hospital has answered it. Messages left
// for later (answered "retry" too often) are picked up again once the
// reader has reached the end of the queue.
func (g *Gateway) forward(ctx context.Context) {
	work := make(chan []Queued)
	var wg sync.WaitGroup
	for range g.cfg.Forwarders {
		wg.Go(func() {
			for items := range work {
				g.deliver(ctx, items)
				g.forget(items)
			}
		})
	}
	defer wg.Wait()
	defer close(work)
	var cursor int64
	for ctx.Err() == nil {
		items, err := g.queue.Next(ctx, cursor, g.cfg.BundleSize, maxBundleBytes)
		if err != nil || len(items) == 0 {
			if g.leftBehind.Swap(false) {
				cursor = 0 // read the queue again from the start
				continue
			}
			g.waitForWork(ctx)
			continue
		}
		cursor = items[len(items)-1].ID
		if items = g.take(items); len(items) == 0 {
			continue
		}
		select {
		case work <- items:
		case <-ctx.Done():
		}
	}
}

// take marks items as being delivered and drops those a worker holds.
func (g *Gateway) take(items []Queued) []Queued {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	out := items[:0]
	for _, it := range items {
		if !g.sending[it.ID] {
			g.sending[it.ID] = true
			out = append(out, it)
		}
	}
	return out
}

func (g *Gateway) forget(items []Queued) {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	for _, it := range items {
		delete(g.sending, it.ID)
	}
}

func (g *Gateway) waitForWork(ctx context.Context) {
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-g.queue.notify:
	case <-t.C:
	case <-ctx.Done():
	}
}

// deliver sends items until each has a final answer (stored, duplicate,
// refused), backing off exponentially while the hospital is unreachable
// (for as long as it takes) or asks to retry (maxRetryRounds times, then
// the messages wait in the queue for a later pass).
func (g *Gateway) deliver(ctx context.Context, items []Queued) {
	wait, rounds := backoffMin, 0
	for len(items) > 0 && ctx.Err() == nil {
		rest, err := g.deliverOnce(ctx, items)
		if err != nil {
			g.metrics.upstreamErrors.Inc()
			g.cfg.Logger.Warn("delivery to the hospital failed; retrying", "messages", len(items), "in", wait, "err", err)
		} else if len(rest) > 0 {
			if rounds++; rounds > maxRetryRounds {
				g.leftBehind.Store(true)
				return
			}
		}
		if len(rest) == len(items) || err != nil {
			sleep(ctx, jitter(wait))
			wait = min(2*wait, backoffMax)
		} else {
			wait = backoffMin
		}
		items = rest
	}
}

// deliverOnce posts one bundle and settles the final answers; it returns
// the messages to send again.
func (g *Gateway) deliverOnce(ctx context.Context, items []Queued) ([]Queued, error) {
	ans, err := g.post(ctx, items)
	if err != nil {
		return items, err
	}
	if len(ans.Results) != len(items) {
		return items, fmt.Errorf("the hospital answered %d results for %d messages", len(ans.Results), len(items))
	}
	var done []int64
	var rest []Queued
	now := time.Now()
	for i, r := range ans.Results {
		switch r.Status {
		case ingest.Stored, ingest.Duplicate:
			g.metrics.forwarded.Inc()
			g.metrics.forwardLatency.Observe(now.Sub(items[i].Received).Seconds())
			done = append(done, items[i].ID)
		case ingest.Rejected:
			g.metrics.upstreamRefuse.WithLabelValues(string(r.Reason)).Inc()
			g.cfg.Logger.Warn("the hospital refused a message", "device", items[i].Device, "seq", items[i].Seq, "reason", string(r.Reason), "detail", r.Detail)
			done = append(done, items[i].ID)
		default:
			rest = append(rest, items[i])
		}
	}
	if err := g.queue.Delete(context.WithoutCancel(ctx), done); err != nil {
		// Redelivery is harmless: the hospital answers duplicate.
		return items, fmt.Errorf("drop delivered messages: %w", err)
	}
	g.metrics.queued.Set(float64(g.queued.Add(-int64(len(done)))))
	return rest, nil
}

func (g *Gateway) post(ctx context.Context, items []Queued) (ingest.Answer, error) {
	var ans ingest.Answer
	msgs := make([][]byte, len(items))
	for i, it := range items {
		msgs[i] = it.Body
	}
	body, err := ingest.EncodeBundle(msgs)
	if err != nil {
		return ans, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.Upstream+"/ingest"+ingest.PathMessages, bytes.NewReader(body))
	if err != nil {
		return ans, err
	}
	req.Header.Set("Content-Type", ingest.ContentTypeBundle)
	resp, err := g.upstream.Do(req)
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ref devices.Refusal
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ref)
		return ans, fmt.Errorf("the hospital answered %s: %s %s", resp.Status, ref.Reason, ref.Detail)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&ans)
	return ans, err
}

// postJSON posts v to the hospital's ingestion path and decodes its
// answer into out; any status but 200 is an error (the caller retries).
func (g *Gateway) postJSON(ctx context.Context, path string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.Upstream+"/ingest"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.upstream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ref devices.Refusal
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ref)
		return fmt.Errorf("the hospital answered %s: %s %s", resp.Status, ref.Reason, ref.Detail)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out)
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
