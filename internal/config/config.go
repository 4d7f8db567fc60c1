// Package config is medsec's configuration: one documented YAML file in the
// data directory with every default written out, two profiles (large and
// small hospital, the paper's Tables 5 and 6) that are only sets of
// defaults, and validation that says what to fix. Secrets never live here:
// the passphrase and database passwords come from the environment.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileName is the configuration file's name in the data directory.
const FileName = "medsec.yaml"

// Profiles.
const (
	ProfileLarge = "large"
	ProfileSmall = "small"
)

// Config is the whole configuration.
type Config struct {
	Hospital     Hospital     `yaml:"hospital"`
	Profile      string       `yaml:"profile"`
	Jurisdiction string       `yaml:"jurisdiction"`
	Database     Database     `yaml:"database"`
	Keys         Keys         `yaml:"keys"`
	Audit        Audit        `yaml:"audit"`
	Server       Server       `yaml:"server"`
	Capabilities Capabilities `yaml:"capabilities"`

	dir string // the data directory, set by Load
}

// Hospital names the installation.
type Hospital struct {
	Name string `yaml:"name"`
	// ID is random at init; it names the audit log in its checkpoints.
	ID string `yaml:"id"`
}

// Database chooses the storage backend.
type Database struct {
	// Driver is sqlite (embedded file) or postgres.
	Driver string `yaml:"driver"`
	// Path is the SQLite file, relative to the data directory.
	Path string `yaml:"path"`
	// DSNEnv names the environment variable that holds the PostgreSQL
	// connection string, so its password never sits in this file.
	DSNEnv string `yaml:"dsn_env"`
	// DSN is a PostgreSQL connection string without a password (trust or
	// certificate authentication); DSNEnv wins when set.
	DSN string `yaml:"dsn" secret:"true"`
}

// Keys configures the key-encryption key provider.
type Keys struct {
	Provider string `yaml:"provider"`
	File     string `yaml:"file"`
}

// Audit configures the audit log.
type Audit struct {
	Chain              string        `yaml:"chain"`
	CheckpointFile     string        `yaml:"checkpoint_file"`
	VerifierKeyFile    string        `yaml:"verifier_key_file"`
	CheckpointEvery    uint64        `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// Server configures `medsec serve`.
type Server struct {
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey name the server's certificate; when both are
	// empty medsec makes a self-signed one in the data directory.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Capabilities switches the seven technologies on or off. A profile sets
// the defaults; any can be changed.
type Capabilities struct {
	PHDSecurity     bool `yaml:"phd_security"`
	SecurityGateway bool `yaml:"security_gateway"`
	PHDAuth         bool `yaml:"phd_authentication"`
	StaffAuth       bool `yaml:"staff_authentication"`
	AccessControl   bool `yaml:"access_control"`
	MalwarePrevent  bool `yaml:"malicious_code_prevention"`
	Deidentify      bool `yaml:"deidentification"`
	PACS            bool `yaml:"pacs"`
}

// Defaults returns the configuration of a profile.
func Defaults(profile string) (Config, error) {
	c := Config{
		Hospital:     Hospital{Name: "Hospital", ID: newInstallID()},
		Profile:      profile,
		Jurisdiction: "kr",
		Database:     Database{Driver: "sqlite", Path: "medsec.db", DSNEnv: "MEDSEC_DB"},
		Keys:         Keys{Provider: "local", File: "keys/kek.json"},
		Audit: Audit{Chain: "main", CheckpointFile: "audit/checkpoints", VerifierKeyFile: "keys/audit.vkey",
			CheckpointEvery: 10000, CheckpointInterval: 5 * time.Second},
		Server: Server{Listen: "127.0.0.1:8443"},
	}
	switch profile {
	case ProfileLarge:
		c.Capabilities = Capabilities{true, true, true, true, true, true, true, true}
	case ProfileSmall:
		// Table 5/6: small hospitals run one integrated server (EMR and OCS
		// together), no PHD gateway, often no PACS.
		c.Capabilities = Capabilities{StaffAuth: true, AccessControl: true, MalwarePrevent: true}
	default:
		return Config{}, fmt.Errorf("unknown profile %q: use large or small", profile)
	}
	return c, nil
}

func newInstallID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Dir is the data directory the configuration was loaded from.
func (c *Config) Dir() string { return c.dir }

// SetDir sets the data directory (for a configuration built in memory).
func (c *Config) SetDir(dir string) { c.dir = dir }

// Path resolves a path of the configuration against the data directory.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Validate says what is wrong, all at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Profile != ProfileLarge && c.Profile != ProfileSmall {
		errs = append(errs, fmt.Errorf("profile: %q is not large or small", c.Profile))
	}
	if c.Jurisdiction != "kr" && c.Jurisdiction != "us" {
		errs = append(errs, fmt.Errorf("jurisdiction: %q is not kr or us", c.Jurisdiction))
	}
	switch c.Database.Driver {
	case "sqlite":
		if c.Database.Path == "" {
			errs = append(errs, errors.New("database.path: empty"))
		}
	case "postgres":
		if c.DSN() == "" {
			errs = append(errs, fmt.Errorf("database: driver postgres needs a DSN in $%s or database.dsn", c.Database.DSNEnv))
		}
	default:
		errs = append(errs, fmt.Errorf("database.driver: %q is not sqlite or postgres", c.Database.Driver))
	}
	if c.Keys.Provider != "local" {
		errs = append(errs, fmt.Errorf("keys.provider: %q is not supported yet (local only; Vault transit and cloud KMS are planned)", c.Keys.Provider))
	}
	if c.Hospital.ID == "" || strings.ContainsAny(c.Hospital.ID, " +") {
		errs = append(errs, errors.New("hospital.id: must be set, without spaces or '+'"))
	}
	if c.Audit.CheckpointEvery == 0 || c.Audit.CheckpointInterval <= 0 {
		errs = append(errs, errors.New("audit: checkpoint_every and checkpoint_interval must be positive"))
	}
	return errors.Join(errs...)
}

// DSN is the PostgreSQL connection string, from the environment first.
func (c *Config) DSN() string {
	if c.Database.DSNEnv != "" {
		if v := os.Getenv(c.Database.DSNEnv); v != "" {
			return v
		}
	}
	return c.Database.DSN
}

// AuditOrigin names the audit log in its signed checkpoints.
func (c *Config) AuditOrigin() string { return "medsec-audit-" + c.Hospital.ID }

// Load reads and validates the configuration of a data directory.
func Load(dir string) (*Config, error) {
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a medsec data directory (no %s): run medsec init --data %s", dir, FileName, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	c.dir = dir
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return &c, nil
}

// Render writes the configuration as documented YAML: every setting with
// a comment saying what it does.
func (c *Config) Render() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, err
	}
	comment(&n, "")
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

const header = `# medsec configuration. Every setting is written out with its default;
# change what your hospital needs and restart medsec. Secrets are never kept
# here: the key passphrase comes from MEDSEC_PASSPHRASE (or a prompt), a
# PostgreSQL password from the variable named in database.dsn_env.
`

var docs = map[string]string{
	"hospital":                               "The installation.",
	"hospital.name":                          "Shown in the console and on documents.",
	"hospital.id":                            "Random at init; names the audit log in its signed checkpoints. Do not change it.",
	"profile":                                "large: all seven technologies; small: one integrated server with safe defaults (paper, Tables 5-6).",
	"jurisdiction":                           "kr or us: the retention and de-identification profiles to start from.",
	"database":                               "Where medsec keeps its data. Nothing identifying is stored in plaintext.",
	"database.driver":                        "sqlite (embedded, one file) or postgres (large hospitals, several replicas).",
	"database.path":                          "SQLite file, relative to the data directory.",
	"database.dsn_env":                       "Environment variable holding the PostgreSQL connection string (keeps its password out of this file).",
	"database.dsn":                           "PostgreSQL connection string without a password (trust or certificate auth); dsn_env wins.",
	"keys":                                   "The key-encryption key (KEK) that wraps every patient's data key.",
	"keys.provider":                          "local: the passphrase-protected key file below. (Vault transit / cloud KMS: planned.)",
	"keys.file":                              "KEK key file (mode 0600). Back it up offline; without it and the passphrase nothing can be read.",
	"audit":                                  "The tamper-evident audit log.",
	"audit.chain":                            "Name of the log chain this installation appends to.",
	"audit.checkpoint_file":                  "Signed checkpoints are appended here too, outside the database. Copy it off the machine regularly.",
	"audit.verifier_key_file":                "Public key that checks the checkpoints; give it to your auditor.",
	"audit.checkpoint_every":                 "Sign a checkpoint after this many events ...",
	"audit.checkpoint_interval":              "... or after this long, whichever comes first, and at shutdown.",
	"server":                                 "medsec serve: the clinical records API, the console and the patient portal (HTTPS).",
	"server.listen":                          "Address to listen on.",
	"server.tls_cert":                        "Server certificate (PEM). Empty: medsec makes a self-signed one in the data directory.",
	"server.tls_key":                         "Server private key (PEM).",
	"capabilities":                           "The paper's seven technologies (and PACS intake); the profile sets these defaults.",
	"capabilities.phd_security":              "PHD security solution: signed and encrypted device measurements.",
	"capabilities.security_gateway":          "Medical information security gateway for PHD data.",
	"capabilities.phd_authentication":        "Public-key authentication of personal health devices.",
	"capabilities.staff_authentication":      "HIS authentication of staff (always recommended).",
	"capabilities.access_control":            "Access control and authority management (always recommended).",
	"capabilities.malicious_code_prevention": "Malicious-code prevention for imports and legacy workstations.",
	"capabilities.deidentification":          "Anonymization and de-identification for AI datasets.",
	"capabilities.pacs":                      "PACS intake of DICOM studies.",
}

// comment attaches docs to mapping keys, walking the node tree.
func comment(n *yaml.Node, prefix string) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			comment(c, prefix)
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if prefix != "" {
			key = prefix + "." + key
		}
		if d, ok := docs[key]; ok {
			n.Content[i].HeadComment = d
		}
		comment(n.Content[i+1], key)
	}
}
