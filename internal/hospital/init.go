package hospital

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medsec/medsec/internal/config"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// InitOptions describes a new installation.
type InitOptions struct {
	Dir          string
	Profile      string
	HospitalName string
	Passphrase   []byte
	// AdminUsername and AdminPassword make the first administrator; an
	// empty password is generated and returned once.
	AdminUsername string
	AdminPassword string
	// DSN selects PostgreSQL instead of the embedded SQLite file.
	DSN string
	KDF keys.KDFParams
}

// InitResult reports what Init made.
type InitResult struct {
	Dir               string
	Admin             identity.Staff
	GeneratedPassword string // set only when Init chose the password
	// AdminTOTP is the administrator's authenticator enrolment (otpauth URL
	// and secret), shown once.
	AdminTOTP   identity.TOTPEnrolment
	VerifierKey string
	KeyFile     string
}

// Init creates a data directory: configuration, key file, database,
// audit-signing key and the first administrator. It refuses a directory
// that already holds anything, and removes what it made if it fails.
func Init(ctx context.Context, opt InitOptions) (res InitResult, err error) {
	created, err := ensureDir(opt.Dir)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			cleanup(opt.Dir, created)
		}
	}()
	cfg, err := writeConfig(opt)
	if err != nil {
		return res, err
	}
	provider, err := keys.CreateKeyFile(cfg.Path(cfg.Keys.File), opt.Passphrase, opt.KDF)
	if err != nil {
		return res, err
	}
	db, err := openDB(ctx, cfg, true)
	if err != nil {
		return res, err
	}
	if err := refuseUsedDatabase(ctx, db); err != nil {
		db.Close()
		return res, err
	}
	h, err := assemble(ctx, cfg, db, provider)
	if err != nil {
		db.Close()
		return res, err
	}
	defer func() { err = errors.Join(err, h.Close(ctx)) }()
	res = InitResult{Dir: opt.Dir, KeyFile: cfg.Path(cfg.Keys.File)}
	res.VerifierKey = h.verifier.Name()
	res.Admin, res.GeneratedPassword, res.AdminTOTP, err = h.createAdmin(ctx, opt)
	return res, err
}

func writeConfig(opt InitOptions) (*config.Config, error) {
	cfg, err := config.Defaults(opt.Profile)
	if err != nil {
		return nil, err
	}
	cfg.SetDir(opt.Dir)
	if opt.HospitalName != "" {
		cfg.Hospital.Name = opt.HospitalName
	}
	if opt.DSN != "" {
		cfg.Database.Driver = "postgres"
		if hasPassword(opt.DSN) {
			return nil, fmt.Errorf("the --db connection string holds a password; put it in $%s instead so it is never written to disk", cfg.Database.DSNEnv)
		}
		cfg.Database.DSN = opt.DSN
	}
	for _, d := range []string{"keys", "audit"} {
		if err := os.MkdirAll(filepath.Join(opt.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	raw, err := cfg.Render()
	if err != nil {
		return nil, err
	}
	if err := keys.WriteFileAtomic(filepath.Join(opt.Dir, config.FileName), raw, 0o600); err != nil {
		return nil, fmt.Errorf("write configuration: %w", err)
	}
	return &cfg, cfg.Validate()
}

// refuseUsedDatabase keeps a second init from taking over a database that
// already holds an installation (PostgreSQL is shared, unlike the file).
func refuseUsedDatabase(ctx context.Context, db *store.DB) error {
	var n int
	err := db.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n)
	if err == nil && n > 0 {
		return errors.New("the database already holds a medsec installation; refusing to overwrite it")
	}
	return nil
}

func (h *Hospital) createAdmin(ctx context.Context, opt InitOptions) (identity.Staff, string, identity.TOTPEnrolment, error) {
	pw, generated := opt.AdminPassword, ""
	if pw == "" {
		pw = randomPassword()
		generated = pw
	}
	name := opt.AdminUsername
	if name == "" {
		name = "admin"
	}
	// Create audits itself ("staff.create" by system:init).
	s, err := h.Staff.CreateBy(ctx, identity.System("init"), identity.NewStaff{Username: name, DisplayName: "First administrator",
		Role: identity.RoleITAdmin, Department: "IT", Password: pw}, "first administrator at init")
	if err != nil {
		return s, "", identity.TOTPEnrolment{}, err
	}
	// An IT administrator signs in with a second factor: enrol it now; the
	// first sign-in with a code from the authenticator confirms it.
	enr, err := h.Staff.EnrolTOTP(ctx, identity.System("init"), s.ID)
	return s, generated, enr, err
}

func hasPassword(dsn string) bool {
	if strings.Contains(dsn, "password=") {
		return true
	}
	// postgres://user:secret@host
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok && strings.Contains(userinfo, ":") {
			return true
		}
	}
	return false
}

func cleanup(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
