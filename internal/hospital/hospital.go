// Package hospital assembles one medsec installation from its data
// directory: configuration, key provider, database, audit log, staff
// directory and the one door to patient data. Commands and servers call
// Init once and Open every time; nothing else wires these together.
package hospital

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/anomaly"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/config"
	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/docsec"
	"github.com/medsec/medsec/internal/guard/workstation"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/postgres"
	"github.com/medsec/medsec/internal/store/sqlite"
)

// Hospital is an open installation.
type Hospital struct {
	Config *config.Config
	DB     *store.DB
	Keys   *keys.Keyring
	Audit  *audit.Log
	Staff  *identity.Directory
	Door   *records.Door
	// Alerts is the security officer's inbox.
	Alerts *alerts.Inbox
	// Documents makes watermarked, sealed document exports.
	Documents *docsec.Exporter

	verifier note.Verifier
	macKey   []byte
	decider  *policyDecider
}

// Names of the system secrets kept wrapped in the database.
const (
	secretAuditMAC    = "audit-mac"
	secretAuditSigner = "audit-signer"
	secretPseudonym   = "pseudonym"
	secretBlindIndex  = "blind-index"
	secretExportMark  = "export-mark"
)

// migrations lists every component's schema in dependency order.
func migrations() [][]store.Migration {
	return [][]store.Migration{keys.Migrations, audit.Migrations, identity.Migrations, records.Migrations, alerts.Migrations, docsec.Migrations, anomaly.Migrations, devices.Migrations, ingest.Migrations, lifecycle.Migrations, provision.Migrations, imaging.Migrations, workstation.Migrations, dataset.Migrations}
}

// OpenOptions says how to open an installation.
type OpenOptions struct {
	Passphrase []byte
	// DSN overrides the configured PostgreSQL connection (--db).
	DSN string
	// KDF is used only by Init (tests lower it).
	KDF *keys.KDFParams
}

// Open opens the installation in dir.
func Open(ctx context.Context, dir string, opt OpenOptions) (*Hospital, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	if opt.DSN != "" {
		cfg.Database.Driver, cfg.Database.DSN, cfg.Database.DSNEnv = "postgres", opt.DSN, ""
	}
	provider, err := keys.OpenKeyFile(cfg.Path(cfg.Keys.File), opt.Passphrase)
	if err != nil {
		return nil, err
	}
	db, err := openDB(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	if err := checkInstalled(ctx, db, cfg); err != nil {
		db.Close()
		return nil, err
	}
	h, err := assemble(ctx, cfg, db, provider)
	if err != nil {
		db.Close()
		return nil, err
	}
	return h, nil
}

// checkInstalled refuses a database that holds no medsec installation (an
// empty file, another database in its place) before anything is created in
// it: opening would otherwise make new system keys there and fail later
// with a misleading error.
func checkInstalled(ctx context.Context, db *store.DB, cfg *config.Config) error {
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = 'keys'`).Scan(&n); err == nil && n > 0 {
		return nil
	}
	where := cfg.Path(cfg.Database.Path)
	if cfg.Database.Driver == "postgres" {
		where = "the PostgreSQL database the configuration names"
	}
	return fmt.Errorf("%s holds no medsec installation (empty, or another database in its place): restore it from a backup, or run medsec init in a new directory", where)
}

func openDB(ctx context.Context, cfg *config.Config, create bool) (*store.DB, error) {
	if cfg.Database.Driver == "postgres" {
		return postgres.Open(ctx, cfg.DSN())
	}
	return sqlite.Open(ctx, cfg.Path(cfg.Database.Path), create)
}

func assemble(ctx context.Context, cfg *config.Config, db *store.DB, provider keys.KeyProvider) (*Hospital, error) {
	if err := db.Migrate(ctx, migrations()...); err != nil {
		return nil, fmt.Errorf("prepare database: %w", err)
	}
	h := &Hospital{Config: cfg, DB: db, Keys: keys.NewKeyring(db, provider), Staff: identity.NewDirectory(db)}
	secrets := map[string][]byte{}
	for _, name := range []string{secretAuditMAC, secretAuditSigner, secretPseudonym, secretBlindIndex, secretExportMark} {
		s, err := h.Keys.SystemKey(ctx, name)
		if err != nil {
			return nil, err
		}
		secrets[name] = s
	}
	signer, err := audit.NewSigner(cfg.AuditOrigin(), secrets[secretAuditSigner])
	if err != nil {
		return nil, err
	}
	if h.verifier, err = loadVerifier(cfg, signer); err != nil {
		return nil, err
	}
	h.macKey = secrets[secretAuditMAC]
	h.Audit, err = audit.Open(ctx, db, audit.Config{Chain: cfg.Audit.Chain, Signer: signer, MACKey: h.macKey,
		CheckpointFile: cfg.Path(cfg.Audit.CheckpointFile), Every: cfg.Audit.CheckpointEvery, Interval: cfg.Audit.CheckpointInterval})
	if err != nil {
		return nil, err
	}
	h.Staff.Audit, h.Staff.Keys = h.Audit, h.Keys
	h.Alerts = alerts.New(db, h.Audit)
	h.decider, err = newDecider(h.Staff)
	if err != nil {
		h.Audit.Close(ctx)
		return nil, err
	}
	h.Door, err = records.New(records.Config{DB: db, Keys: h.Keys, Audit: h.Audit, Decider: h.decider, Alerts: h.Alerts,
		PseudonymKey: secrets[secretPseudonym], IndexKey: secrets[secretBlindIndex]})
	if err != nil {
		h.Audit.Close(ctx)
		return nil, err
	}
	if h.Documents, err = docsec.New(h.Door, db, secrets[secretExportMark]); err != nil {
		h.Audit.Close(ctx)
		return nil, err
	}
	return h, nil
}

// loadVerifier reads the published verifier key and checks that it is the
// signer's: a swapped key file must not make forged checkpoints verify.
func loadVerifier(cfg *config.Config, signer *audit.Signer) (note.Verifier, error) {
	want, err := signer.VerifierKey()
	if err != nil {
		return nil, err
	}
	path := cfg.Path(cfg.Audit.VerifierKeyFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(path, []byte(want+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write audit verifier key: %w", err)
		}
		raw = []byte(want)
	} else if err != nil {
		return nil, fmt.Errorf("read audit verifier key: %w", err)
	}
	if strings.TrimSpace(string(raw)) != want {
		return nil, fmt.Errorf("audit verifier key %s does not belong to this installation's signing key", path)
	}
	return note.NewVerifier(want)
}

// Verifier returns the audit log's verifier.
func (h *Hospital) Verifier() *audit.Verifier {
	return &audit.Verifier{DB: h.DB, Chain: h.Config.Audit.Chain, NoteVerifier: h.verifier,
		MACKey: h.macKey, CheckpointFile: h.Config.Path(h.Config.Audit.CheckpointFile)}
}

// Close signs a final checkpoint and closes the database.
func (h *Hospital) Close(ctx context.Context) error {
	err := h.Audit.Close(ctx)
	return errors.Join(err, h.DB.Close())
}

func randomPassword() string {
	b := make([]byte, 12)
	rand.Read(b)
	s := hex.EncodeToString(b)
	return s[:6] + "-" + s[6:12] + "-" + s[12:18] + "-" + s[18:]
}

// ensureDir makes dir (mode 0700) and refuses one that already holds files.
func ensureDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, config.FileName)); err == nil {
		return false, fmt.Errorf("%s already holds a medsec installation; refusing to overwrite it", dir)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%s is not empty; choose a new or empty directory", dir)
	}
	return false, os.Chmod(dir, 0o700)
}
