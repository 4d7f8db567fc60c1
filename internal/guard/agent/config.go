package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mode says what the agent does about a process that is not allowlisted.
type Mode string

// Modes.
const (
	ModeAlert   Mode = "alert"   // report it, let it run (for the first weeks on a workstation)
	ModeEnforce Mode = "enforce" // report it and stop it with SIGKILL
)

// Config is the agent's YAML configuration file.
type Config struct {
	Mode Mode `yaml:"mode"`
	// Interval between process checks.
	Interval time.Duration `yaml:"interval"`
	// IntegrityInterval between file-integrity checks.
	IntegrityInterval time.Duration `yaml:"integrity_interval"`
	// Allow lists executables by digest.
	Allow []AllowEntry `yaml:"allow"`
	// AllowPaths are files, or directories of executables, allowed as
	// they are when the agent starts.
	AllowPaths []string `yaml:"allow_paths"`
	// Protect are the directories whose files are watched for change.
	Protect []string `yaml:"protect"`
	// BaselineFile keeps the integrity baseline across restarts, so a
	// change made while the agent was down is still reported.
	BaselineFile string `yaml:"baseline_file"`
	// Server, when set, is where alerts go besides standard output: the
	// hospital server, over mutual TLS.
	Server *ServerConfig `yaml:"server"`
}

// AllowEntry is one allowlisted executable.
type AllowEntry struct {
	SHA256 string `yaml:"sha256"`
	Name   string `yaml:"name"`
}

// Defaults for intervals left out of the file.
const (
	DefaultInterval          = 2 * time.Second
	DefaultIntegrityInterval = 5 * time.Minute
)

// ErrConfig means the configuration file is wrong; the message says where.
var ErrConfig = errors.New("invalid guard agent configuration")

// ParseConfig reads YAML; unknown keys are errors, so a typo cannot turn
// a protection off silently.
func ParseConfig(r io.Reader) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := oneDocument(dec); err != nil {
		return c, err
	}
	return c, c.validate()
}

// oneDocument refuses a further YAML document that says anything: the
// decoder reads only the first, so settings after a "---" line would
// otherwise be ignored silently.
func oneDocument(dec *yaml.Decoder) error {
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if len(n.Content) > 0 && n.Content[0].Tag != "!!null" {
			return fmt.Errorf("%w: a second YAML document (after a \"---\" line) would be ignored; keep the whole configuration in one", ErrConfig)
		}
	}
}

// LoadConfig reads the configuration file at path.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read guard agent config: %w", err)
	}
	return ParseConfig(bytes.NewReader(b))
}

func (c *Config) validate() error {
	switch c.Mode {
	case "":
		c.Mode = ModeAlert
	case ModeAlert, ModeEnforce:
	default:
		return fmt.Errorf("%w: mode %q: want alert or enforce", ErrConfig, c.Mode)
	}
	if c.Interval < 0 || c.IntegrityInterval < 0 {
		return fmt.Errorf("%w: intervals must be positive", ErrConfig)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.IntegrityInterval == 0 {
		c.IntegrityInterval = DefaultIntegrityInterval
	}
	if _, err := NewAllowlist(c.Allow); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if s := c.Server; s != nil && (!strings.HasPrefix(s.URL, "https://") || s.Cert == "" || s.Key == "") {
		return fmt.Errorf("%w: server needs an https:// url, cert and key", ErrConfig)
	}
	return nil
}
