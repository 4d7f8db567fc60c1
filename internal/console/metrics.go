package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/medsec/medsec/internal/identity"
)

// metricsRoles may read the server's metrics.
var metricsRoles = []string{identity.RoleSecurityOfficer, identity.RoleITAdmin}

// GuardMetrics serves next (the Prometheus metrics) only to a staff
// session of the security officer or the IT administrator: the console's
// session cookie in a browser, or the session's token as a bearer token
// (Authorization: Bearer …), or a scrape token (CreateScrapeToken) for a
// Prometheus scraper, which reads the metrics and nothing else. Anyone
// else gets 401 and nothing about the server's traffic.
func (c *Console) GuardMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if ck, err := r.Cookie(staffCookie); err == nil {
			token = ck.Value
		}
		if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = strings.TrimSpace(auth)
		}
		if strings.HasPrefix(token, scrapePrefix) {
			if err := checkScrapeToken(r.Context(), c.h.DB, token); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="medsec metrics", error="invalid_token"`)
				http.Error(w, "this metrics scrape token is unknown or revoked: create a new one with medsec metrics token create", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		p, err := c.h.Staff.Sessions.Authenticate(r.Context(), token, source(r))
		if err != nil || !slices.Contains(metricsRoles, p.Role) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="medsec metrics"`)
			http.Error(w, "sign in as the security officer or the IT administrator to read the metrics", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
