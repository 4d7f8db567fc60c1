package display

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// FileName is the optional settings file of the waiting-room displays in
// the data directory. Without it the defaults apply.
const FileName = "display.yaml"

// Settings configure the waiting-room displays.
type Settings struct {
	Mask Rule `yaml:"mask"`
	// RefreshSeconds is how often a screen reloads.
	RefreshSeconds int `yaml:"refresh_seconds"`
	// Calling is how many called tickets a screen shows; Waiting how many
	// waiting ones.
	Calling int `yaml:"calling"`
	Waiting int `yaml:"waiting"`
}

// Defaults are the settings without a file.
var Defaults = Settings{Mask: DefaultRule, RefreshSeconds: 10, Calling: 3, Waiting: 8}

// Validate says what is wrong, all at once.
func (s Settings) Validate() error {
	errs := []error{s.Mask.Validate()}
	if s.RefreshSeconds < 2 || s.RefreshSeconds > 600 {
		errs = append(errs, fmt.Errorf("refresh_seconds: %d is not between 2 and 600", s.RefreshSeconds))
	}
	if s.Calling < 1 || s.Calling > 20 || s.Waiting < 0 || s.Waiting > 50 {
		errs = append(errs, errors.New("calling must be 1-20 and waiting 0-50"))
	}
	return errors.Join(errs...)
}

// Load reads DIR/display.yaml over the defaults; a missing file means the
// defaults.
func Load(dir string) (Settings, error) {
	s := Defaults
	path := filepath.Join(dir, FileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read display settings: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
