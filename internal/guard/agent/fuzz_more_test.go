package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig: a configuration file either is refused with ErrConfig
// or yields a configuration the agent can run (a known mode, positive
// intervals, an allowlist of digests, an https server with a certificate
// and key) that writes back to YAML and parses again to itself.
func FuzzParseConfig(f *testing.F) {
	digest := strings.Repeat("ab", 32)
	for _, s := range []string{
		"mode: enforce\ninterval: 5s\nallow:\n  - sha256: " + strings.ToUpper(digest) + "\n    name: viewer\nallow_paths: [/opt/pacs/bin]\nprotect: [/opt/pacs]\n",
		"mode: enforce\ninterval: 20ms\nintegrity_interval: 20ms\nprotect: [/srv/export]\nbaseline_file: /var/lib/guard/baseline.json\n",
		"server:\n  url: https://pacs:8443/guard/alerts\n  cert: ws.crt\n  key: ws.key\n  ca: server.crt\n  max_pending: 5\n",
		"server:\n  url: http://pacs:8080/guard/alerts\n  cert: ws.crt\n  key: ws.key\n",
		"mode: alert\nprotekt: [/opt]\n",
		"mode: block\n",
		"allow:\n  - sha256: abc\n",
		"interval: -1s\n",
		"interval: soon\n",
		"interval: 5\n",
		"mode: alert\n---\nmode: enforce\n",
		"a: &a [*a]\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseConfig(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("refusal is not ErrConfig: %v", err)
			}
			return
		}
		checkRunnable(t, cfg)
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("accepted configuration does not encode: %v", err)
		}
		again, err := ParseConfig(strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("re-encoded configuration is refused: %v\n%s", err, out)
		}
		if diff := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("configuration changed through YAML (-parsed +again):\n%s", diff)
		}
	})
}

func checkRunnable(t *testing.T, c Config) {
	if c.Mode != ModeAlert && c.Mode != ModeEnforce {
		t.Fatalf("accepted mode %q", c.Mode)
	}
	if c.Interval <= 0 || c.IntegrityInterval <= 0 {
		t.Fatalf("accepted intervals %v and %v", c.Interval, c.IntegrityInterval)
	}
	if a, err := NewAllowlist(c.Allow); err != nil || a.Len() > len(c.Allow) {
		t.Fatalf("accepted allowlist does not build: %v", err)
	}
	if s := c.Server; s != nil && (!strings.HasPrefix(s.URL, "https://") || s.Cert == "" || s.Key == "") {
		t.Fatalf("accepted server %+v", *s)
	}
}

// TestParseConfigOneDocument: settings in a second YAML document are
// refused, not ignored (the decoder reads one document; an operator who
// pasted "---" between two halves got alert mode protecting nothing).
func TestParseConfigOneDocument(t *testing.T) {
	if _, err := ParseConfig(strings.NewReader("mode: alert\n---\nmode: enforce\nprotect: [/opt/pacs]\n")); !errors.Is(err, ErrConfig) {
		t.Errorf("second document: got %v, want ErrConfig", err)
	}
	for _, in := range []string{"mode: enforce\n---\n", "---\nmode: enforce\n", "mode: enforce\n...\n", "mode: enforce\n--- ~\n"} {
		if c, err := ParseConfig(strings.NewReader(in)); err != nil || c.Mode != ModeEnforce {
			t.Errorf("%q: got %+v, %v; want enforce mode", in, c, err)
		}
	}
}
