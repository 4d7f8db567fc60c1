package gateway

import (
	"context"
	"time"

	"github.com/medsec/medsec/internal/devices"
)

// poll keeps the device status list current: every PollInterval it asks
// the hospital whether the registry changed (a conditional request that
// costs next to nothing when it did not), verifies a new list with the
// device CA and puts it in force. While the hospital is unreachable the
// last list stays in force (the hospital checks every device again at
// ingestion). It also renews the gateway's own certificate when due.
func (g *Gateway) poll(ctx context.Context) {
	client := &devices.Client{HTTP: g.upstream, BaseURL: g.cfg.Upstream + "/devices"}
	t := time.NewTicker(g.cfg.PollInterval)
	defer t.Stop()
	lastErr, lastRenewal := time.Time{}, time.Time{}
	for {
		if err := g.pollOnce(ctx, client); err != nil && ctx.Err() == nil {
			g.metrics.statusErrors.Inc()
			if time.Since(lastErr) > time.Minute {
				g.cfg.Logger.Warn("device status list not refreshed; the last one stays in force", "err", err)
				lastErr = time.Now()
			}
		}
		if time.Since(lastRenewal) > time.Minute {
			lastRenewal = time.Now()
			g.renewIfDue(ctx, client)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) pollOnce(ctx context.Context, client *devices.Client) error {
	have := g.statuses.Load().revision
	l, body, sig, changed, err := client.StatusList(ctx, g.cfg.Credentials.CA, have)
	if err != nil || !changed {
		return err
	}
	if err := g.queue.SaveStatusList(ctx, body, sig); err != nil {
		g.cfg.Logger.Error("save the device status list", "err", err)
	}
	g.useStatusList(l)
	return nil
}

func (g *Gateway) useStatusList(l devices.StatusList) {
	g.statuses.Store(&statusIndex{revision: l.Revision, status: l.Index()})
	g.metrics.statusRevision.Set(float64(l.Revision))
}

// renewIfDue renews the gateway certificate once a third of its life is
// left, saves it and uses it for new connections.
func (g *Gateway) renewIfDue(ctx context.Context, client *devices.Client) {
	cur := g.creds.Load()
	if !cur.RenewalDue(g.now()) {
		return
	}
	hosts := cur.Certificate.DNSNames
	for _, ip := range cur.Certificate.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	csr, err := devices.CreateGatewayCSR(cur.Key, g.name, hosts)
	if err != nil {
		g.cfg.Logger.Error("renew the gateway certificate", "err", err)
		return
	}
	fresh, err := client.Renew(ctx, csr)
	if err != nil {
		g.cfg.Logger.Warn("renew the gateway certificate", "err", err)
		return
	}
	fresh.Key = cur.Key
	if g.cfg.CredentialsDir != "" {
		if err := fresh.Save(g.cfg.CredentialsDir); err != nil {
			g.cfg.Logger.Error("save the renewed gateway certificate", "err", err)
		}
	}
	g.useCredentials(fresh)
	g.cfg.Logger.Info("renewed the gateway certificate", "valid_until", fresh.Certificate.NotAfter)
}
