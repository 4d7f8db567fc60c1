package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestServerConfig(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		ok         bool
	}{
		{"none", "mode: alert\n", true},
		{"complete", "server:\n  url: https://pacs:8443/guard/alerts\n  cert: ws.crt\n  key: ws.key\n  ca: server.crt\n", true},
		{"plain http", "server:\n  url: http://pacs:8080/guard/alerts\n  cert: ws.crt\n  key: ws.key\n", false},
		{"no key", "server:\n  url: https://pacs/guard/alerts\n  cert: ws.crt\n", false},
		{"typo", "server:\n  url: https://pacs/guard/alerts\n  cert: ws.crt\n  key: ws.key\n  cacert: x\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tt.yaml))
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := NewRemote(ServerConfig{URL: "https://x", Cert: "/nonexistent.crt", Key: "/nonexistent.key"}); !errors.Is(err, ErrConfig) {
		t.Errorf("missing certificate files: got %v, want ErrConfig", err)
	}
}

type failingSink struct{ calls int }

func (f *failingSink) Send(context.Context, []Alert) error {
	f.calls++
	return errors.New("down")
}

func TestTeeTriesEverySink(t *testing.T) {
	a, b := &failingSink{}, &failingSink{}
	if err := (Tee{a, b}).Send(context.Background(), []Alert{{Reason: "x"}}); err == nil || a.calls != 1 || b.calls != 1 {
		t.Errorf("tee: err %v, calls %d and %d; want an error after both tried", err, a.calls, b.calls)
	}
}
