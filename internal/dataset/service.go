package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"sort"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/policies"
)

// Config assembles a Service.
type Config struct {
	DB    *store.DB
	Door  *records.Door
	Keys  *keys.Keyring
	Audit *audit.Log
	// Alerts, when set, receives an alert for every dataset that includes
	// a patient being erased (Erase), so the AI team rebuilds it.
	Alerts *alerts.Inbox
	// HospitalID names the hospital in manifests and in the signing key.
	HospitalID string
	// Policies are the access policy files the door decides with (for the
	// manifest's digest); nil means the shipped ones.
	Policies fs.FS
	Now      func() time.Time
	// Operator names where commands come from ("cli:alice") in the audit
	// log.
	Operator string
}

// Service makes, verifies, lists and traces datasets.
type Service struct {
	cfg        Config
	secretsKey []byte
	signer     *Signer
}

// New returns a Service; it loads (creating on first use) the system
// secrets the dataset keys derive from.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Door == nil || cfg.Keys == nil || cfg.Audit == nil {
		return nil, errors.New("dataset: the service needs a database, the door, the keyring and the audit log")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policies == nil {
		cfg.Policies = policies.FS
	}
	if cfg.Operator == "" {
		cfg.Operator = "local"
	}
	s := &Service{cfg: cfg}
	var err error
	if s.secretsKey, err = cfg.Keys.SystemKey(ctx, secretsKeyName); err != nil {
		return nil, fmt.Errorf("dataset keys: %w", err)
	}
	seed, err := cfg.Keys.SystemKey(ctx, signerKeyName)
	if err != nil {
		return nil, fmt.Errorf("dataset signing key: %w", err)
	}
	if s.signer, err = newSigner("medsec-datasets-"+cfg.HospitalID, seed); err != nil {
		return nil, err
	}
	return s, nil
}

// Signer is the manifest-signing key.
func (s *Service) Signer() *Signer { return s.signer }

// sealSecret and openSecret keep a dataset's secret in the register.
func (s *Service) sealSecret(id string, secret []byte) []byte {
	return seal(derive(s.secretsKey, keySecretSeal), "dataset "+id, secret)
}

func (s *Service) openSecret(in Info) ([]byte, error) {
	secret, err := open(derive(s.secretsKey, keySecretSeal), "dataset "+in.ID, in.secret)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: its secret: %w", in.ID, err)
	}
	return secret, nil
}

// policyDigest hashes the policy files (name and content, in name order).
func policyDigest(fsys fs.FS) (string, error) {
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read policy files: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", fmt.Errorf("read policy file %s: %w", n, err)
		}
		for _, part := range [][]byte{[]byte(n), b} {
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
			h.Write(part)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// codeVersion describes the running build.
func codeVersion() ManifestCode {
	c := ManifestCode{Module: "github.com/medsec/medsec", Version: "devel", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return c
	}
	if bi.Main.Path != "" {
		c.Module = bi.Main.Path
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		c.Version = v
	}
	for _, st := range bi.Settings {
		switch st.Key {
		case "vcs.revision":
			c.Revision = st.Value + c.Revision
		case "vcs.modified":
			if st.Value == "true" {
				c.Revision += "+modified"
			}
		}
	}
	return c
}

// event is a dataset-level audit event (no patient: the door audits the
// reads of each).
func (s *Service) event(actor, role, action, purpose, id, outcome, reason string) audit.Event {
	return audit.Event{Time: s.cfg.Now(), Actor: actor, Role: role, Action: action, Purpose: purpose,
		Resource: "Dataset/" + id, Outcome: outcome, Source: s.cfg.Operator, Reason: reason}
}
