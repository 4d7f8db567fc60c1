package console

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// deriveKeys makes the console's keys, one per use, from its secret.
func (c *Console) deriveKeys(secret []byte) error {
	for _, k := range []struct {
		use string
		key *[]byte
	}{{"csrf", &c.csrfKey}, {"activation code", &c.codeKey}, {"portal-token", &c.sealKey},
		{"ticket", &c.ticketKey}, {"patient link", &c.linkKey}, {"portal user name", &c.userKey}} {
		var err error
		if *k.key, err = hkdf.Key(sha256.New, secret, nil, "medsec console "+k.use, 32); err != nil {
			return fmt.Errorf("derive the console's %s key: %w", k.use, err)
		}
	}
	return nil
}

// CSRF: every form carries a token bound to the session it was made for
// (a staff session, a patient session, or before sign-in a random cookie),
// and http.CrossOriginProtection refuses cross-site browser posts before
// any handler runs. Cookies are SameSite=Strict too.

// preCookie binds the tokens of the sign-in and activation forms.
const preCookie = "__Host-medsec-pre"

func (c *Console) csrfToken(binding string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("csrf\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfValid checks a posted token in constant time.
func (c *Console) csrfValid(r *http.Request, binding string) bool {
	got := r.PostFormValue("csrf")
	return binding != "" && got != "" && hmac.Equal([]byte(got), []byte(c.csrfToken(binding)))
}

// preBinding returns the pre-sign-in binding, setting its cookie when the
// browser has none yet.
func preBinding(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(preCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	v := randomToken()
	setCookie(w, preCookie, v, 0)
	return v
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// setCookie sets a __Host- cookie: Secure, HttpOnly, SameSite=Strict, on
// the whole site, ending with the browser session unless maxAge is set.
func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) { setCookie(w, name, "", -1) }

// limiter slows guessing at the sign-in and activation forms: each client
// address gets n attempts per window.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	seen   map[string][]time.Time
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, seen: map[string][]time.Time{}}
}

// allow records an attempt by key at now and reports whether it is within
// the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) > 10000 {
		l.seen = map[string][]time.Time{} // bounded memory under a flood
	}
	recent := l.seen[key][:0]
	for _, t := range l.seen[key] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= l.n {
		l.seen[key] = recent
		return false
	}
	l.seen[key] = append(recent, now)
	return true
}
