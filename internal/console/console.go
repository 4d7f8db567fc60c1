// Package console is medsec's web face for people (the paper's Figure 5
// prototype, locations 7 and 9, and the management requirement of Table
// 3): the security console for staff, the patient portal and the
// waiting-room displays, served by `medsec serve` over HTTPS.
//
// A small hospital has no security staff, so the console's overview makes
// the hospital's security state obvious to a nurse who also runs the IT:
// the eleven locations of its profile as a map of the information flow,
// each control on, off or failing; open alerts; rates; the audit log's
// state; the posture check. Pages are rendered on the server (html/template
// and go:embed, no JavaScript), in Korean and English, and roles decide
// what each page shows. Patient data is read only through the one door
// (records.Door); the console keeps its own small tables for call tickets,
// patient portal accounts and their sessions, and the enrolled
// waiting-room screens. None holds a name or a user name: a ticket's
// pseudonym and masked name are sealed, user names are keyed digests, and
// all of a patient's rows go when the patient's record is destroyed
// (Traces, Prune).
package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/console/display"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/posture"
)

// Console serves the security console, the patient portal and the
// waiting-room displays.
type Console struct {
	h         *hospital.Hospital
	sections  Sections
	display   display.Settings
	devices   *devices.Authority // nil when the profile uses no devices
	views     *views
	csrfKey   []byte      // keys CSRF tokens
	codeKey   []byte      // keys the MACs of activation codes
	sealKey   []byte      // seals portal tokens
	ticketKey []byte      // seals tickets
	linkKey   []byte      // keys the digests that link tickets to a patient
	userKey   []byte      // keys the digests of portal user names
	sealer    cipher.AEAD // seals portal tokens in the console's tables
	// ticketSealer seals a ticket's pseudonym and masked name.
	ticketSealer cipher.AEAD
	stats        *stats
	posture      *postureCache
	limiter      *limiter
	log          *slog.Logger
	now          func() time.Time
	router       chi.Router
}

// Options tune a console.
type Options struct {
	Logger *slog.Logger
	// Sections are the pages of capabilities that land separately; a nil
	// one is shown as "not available yet".
	Sections Sections
	// Display overrides the waiting-room settings of the data directory.
	Display *display.Settings
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// systemKeyName is the console's secret, kept wrapped by the key provider:
// it keys CSRF tokens and seals portal tokens at rest.
const systemKeyName = "console"

// New prepares the console of an open installation: its tables, its
// secret, the device registry when the profile uses devices, and the
// templates.
func New(ctx context.Context, h *hospital.Hospital, opt Options) (*Console, error) {
	c := &Console{h: h, sections: opt.Sections, log: opt.Logger, now: opt.Now, limiter: newLimiter(20, time.Minute)}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.prepare(ctx, opt); err != nil {
		return nil, err
	}
	c.stats = newStats(h)
	c.posture = &postureCache{h: h, display: &c.display, ttl: 15 * time.Second}
	c.router = c.routes()
	return c, nil
}

func (c *Console) prepare(ctx context.Context, opt Options) error {
	if err := c.h.DB.Migrate(ctx, Migrations); err != nil {
		return fmt.Errorf("prepare console tables: %w", err)
	}
	if err := posture.Prepare(ctx, c.h.DB); err != nil {
		return err
	}
	if err := PrepareScrapeTokens(ctx, c.h.DB); err != nil {
		return err
	}
	if err := c.loadDisplay(opt.Display); err != nil {
		return err
	}
	secret, err := c.h.Keys.SystemKey(ctx, systemKeyName)
	if err != nil {
		return err
	}
	if err := c.deriveKeys(secret); err != nil {
		return err
	}
	if err := c.openSealers(); err != nil {
		return err
	}
	if err := c.upgradeUsernames(ctx); err != nil {
		return err
	}
	if c.views, err = loadViews(); err != nil {
		return err
	}
	return c.openDevices(ctx)
}

func (c *Console) openSealers() error {
	var err error
	if c.sealer, err = newAEAD(c.sealKey); err != nil {
		return err
	}
	c.ticketSealer, err = newAEAD(c.ticketKey)
	return err
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (c *Console) loadDisplay(s *display.Settings) error {
	if s != nil {
		c.display = *s
		return s.Validate()
	}
	var err error
	c.display, err = display.Load(c.h.Config.Dir())
	return err
}

func (c *Console) openDevices(ctx context.Context) error {
	caps := c.h.Config.Capabilities
	if !caps.PHDAuth && !caps.PHDSecurity && !caps.SecurityGateway {
		return nil
	}
	a, err := devices.Open(ctx, devices.Config{DB: c.h.DB, Keys: c.h.Keys, Audit: c.h.Audit, Door: c.h.Door, Organization: c.h.Config.Hospital.Name})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.devices = a
	return nil
}

// ServeHTTP serves /console/…, /portal/…, /display/… and /assets/…; mount
// the console at "/".
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.router.ServeHTTP(w, r) }

// VerifyEvery verifies the audit log now and then every interval until ctx
// ends, recording each result for the posture check; failures are logged
// and raise an alert. It is `medsec serve`'s daily verification.
func VerifyEvery(ctx context.Context, h *hospital.Hospital, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v, err := posture.Verify(ctx, h, "serve")
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			log.Error("audit verification", "error", err)
		case err == nil && !v.OK:
			log.Error("audit verification failed", "summary", v.Summary)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
