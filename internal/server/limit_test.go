package server_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/medsec/medsec/internal/server"
)

// TestMountWithLimit: a mount given its own body limit takes bodies over
// the 8 MiB every other route keeps, up to its limit, and no more.
func TestMountWithLimit(t *testing.T) {
	srv, err := server.New(nil, server.Options{TLS: &tls.Config{MinVersion: tls.VersionTLS13}})
	if err != nil {
		t.Fatal(err)
	}
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	srv.MountWithLimit("/big", 12<<20, count)
	srv.Mount("/small", count)
	srv.Mount("/bigger", count) // shares a prefix, not the mount
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	cases := []struct {
		path      string
		size      int64
		chunked   bool
		status    int
		wantBytes string
	}{
		{"/big/upload", 10 << 20, false, http.StatusOK, "10485760"},
		{"/big", 10 << 20, false, http.StatusOK, "10485760"},
		{"/big/upload", 10 << 20, true, http.StatusOK, "10485760"},
		{"/big/upload", 12<<20 + 1, false, http.StatusRequestEntityTooLarge, ""},
		{"/big/upload", 12<<20 + 1, true, http.StatusRequestEntityTooLarge, ""},
		{"/small/x", 10 << 20, false, http.StatusRequestEntityTooLarge, ""},
		{"/small/x", 10 << 20, true, http.StatusRequestEntityTooLarge, ""},
		{"/bigger/x", 10 << 20, false, http.StatusRequestEntityTooLarge, ""},
		{"/small/x", 8 << 20, false, http.StatusOK, "8388608"},
	}
	for _, c := range cases {
		var body io.Reader = bytes.NewReader(make([]byte, c.size))
		if c.chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+c.path, body)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s (%d bytes): %v", c.path, c.size, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.wantBytes != "" && string(b) != c.wantBytes) {
			t.Errorf("%s (%d bytes, chunked %v): %d %q, want %d %s", c.path, c.size, c.chunked, resp.StatusCode, b, c.status, c.wantBytes)
		}
	}
}
