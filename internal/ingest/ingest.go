package ingest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// Outcomes of one message, as the gateway reads them.
const (
	// Stored: the readings are stored; drop the message from the queue.
	Stored = "stored"
	// Duplicate: stored before (a redelivery); drop it.
	Duplicate = "duplicate"
	// Rejected: refused for good, with a reason; drop it and count it.
	Rejected = "rejected"
	// Retry: not stored now (the server is busy, or another delivery of
	// the same message is in flight); keep it and send it again later.
	Retry = "retry"
)

// Reasons this package adds to those of packages phd and devices.
const (
	ReasonPatientUnknown   phd.Reason = "patient-unknown"   // the pseudonym names no patient
	ReasonPatientDestroyed phd.Reason = "patient-destroyed" // the patient's data was crypto-shredded
	ReasonMessageIDReused  phd.Reason = "message-id-reused" // another device sent this message id
	ReasonInProgress       phd.Reason = "in-progress"       // another delivery of it is being stored
)

// Result is the outcome of one message of a bundle.
type Result struct {
	Index     int        `json:"i"`
	MessageID string     `json:"message_id,omitempty"`
	Status    string     `json:"status"`
	Reason    phd.Reason `json:"reason,omitempty"`
	Detail    string     `json:"detail,omitempty"`
	Readings  int        `json:"readings,omitempty"` // stored measurements
	Flagged   int        `json:"flagged,omitempty"`  // of those, outside physiological limits
	Refused   int        `json:"refused,omitempty"`  // measurements refused (unknown code, unit …)
}

// Config assembles an Ingester.
type Config struct {
	DB        *store.DB
	Keys      *keys.Keyring
	Audit     *audit.Log
	Door      *records.Door
	Authority *devices.Authority
	// Alerts, when set, is where repeated signature and certificate
	// refusals at gateways raise an alert: RefusalAlertThreshold of them
	// (default 5) from one subject within RefusalAlertWindow (default 10
	// minutes, whole minutes).
	Alerts                *alerts.Inbox
	RefusalAlertThreshold int
	RefusalAlertWindow    time.Duration
	// Limits bound what is accepted; zero means phd.DefaultLimits.
	Limits phd.Limits
	// Lease is how long another process's claim on a message is trusted
	// before recovery settles it (default 2 minutes; a store attempt is
	// cut off well before).
	Lease time.Duration
	// Now is the clock (tests).
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Stored, when set, is called once for every message whose readings
	// were stored by this process (benchmarks time delivery with it).
	Stored func(h phd.Header)
}

// Ingester verifies, opens, validates and stores device messages. It is
// safe for concurrent use.
type Ingester struct {
	cfg      Config
	keys     map[string]*ecdh.PrivateKey // by hex key id
	public   *ecdh.PublicKey             // the current ingestion key
	verifier *devices.Verifier
	owner    string // this process's name on its claims
	metrics  *metrics

	mu       sync.Mutex
	inflight map[phd.MessageID]bool
	cache    *lookups

	recoverMu sync.Mutex
}

// New builds an Ingester, deriving the ingestion key.
func New(ctx context.Context, cfg Config) (*Ingester, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Audit == nil || cfg.Door == nil || cfg.Authority == nil {
		return nil, errors.New("ingest: database, keys, audit log, door and device authority are required")
	}
	if cfg.Limits.MaxMessageBytes == 0 {
		cfg.Limits = phd.DefaultLimits()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefusalAlertThreshold <= 0 {
		cfg.RefusalAlertThreshold = 5
	}
	if cfg.RefusalAlertWindow < time.Minute {
		cfg.RefusalAlertWindow = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	priv, err := IngestionKey(ctx, cfg.Keys)
	if err != nil {
		return nil, err
	}
	in := &Ingester{cfg: cfg, public: priv.PublicKey(), verifier: devices.NewVerifier(cfg.Authority.CA()),
		keys:  map[string]*ecdh.PrivateKey{hex.EncodeToString(phd.HospitalKeyID(priv.PublicKey())): priv},
		owner: newOwner(), inflight: map[phd.MessageID]bool{}, cache: newLookups(),
		metrics: newMetrics(cfg.Registerer)}
	return in, nil
}

func newOwner() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "ingest-" + hex.EncodeToString(b)
}

// PublicKey is the ingestion key devices encrypt to.
func (in *Ingester) PublicKey() *ecdh.PublicKey { return in.public }

// Authority is the device authority the ingester checks devices with.
func (in *Ingester) Authority() *devices.Authority { return in.cfg.Authority }

func (in *Ingester) now() time.Time { return in.cfg.Now() }

// Process handles one bundle from gateway: verify every message (in
// parallel), claim the new ones, store each through the door, record the
// outcomes. It never fails as a whole: every message gets a Result.
func (in *Ingester) Process(ctx context.Context, gateway string, msgs [][]byte) []Result {
	start := time.Now()
	results := make([]Result, len(msgs))
	work := in.verifyAll(ctx, gateway, msgs, results)
	claimed := in.claim(ctx, gateway, work, results)
	in.storeAll(ctx, gateway, claimed, results)
	in.metrics.observe(results, time.Since(start))
	return results
}
