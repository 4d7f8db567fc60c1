package console

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// page is what every template receives.
type page struct {
	Lang     string
	Title    string // catalog key
	Area     string // console | portal
	Hospital string
	Nav      []navItem
	Who      string
	Role     string // catalog suffix of role.* ("" for patients)
	CSRF     string
	Flash    string // catalog key of a success message
	Error    string // a message for the person, already in words
	Path     string // the request path, for the language switch
	Data     any
}

type navItem struct {
	Href, Label string
	Current     bool
}

// render writes a page with status. A template failure is logged and
// answered with a plain 500: the person sees no half page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	p.Lang = languageOf(r)
	p.Hospital = c.h.Config.Hospital.Name
	p.Path = r.URL.Path
	if p.Flash == "" {
		p.Flash = flashOf(r)
	}
	body, err := c.views.execute(p.Lang, name, p)
	if err != nil {
		c.log.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

// flashes are the success messages a redirect may name (?done=key); only
// these keys are shown, so the query string cannot put words on a page.
var flashes = map[string]bool{
	"done.ack": true, "done.verify": true, "done.ticket": true, "done.called": true, "done.finished": true,
	"done.withdrawn": true, "done.consent": true, "done.grant": true, "done.activated": true, "done.signedout": true,
	"done.revoked": true,
}

func flashOf(r *http.Request) string {
	if k := "done." + r.URL.Query().Get("done"); flashes[k] {
		return k
	}
	return ""
}

// redirectDone redirects after a successful change (post/redirect/get).
func redirectDone(w http.ResponseWriter, r *http.Request, to, done string) {
	u := to
	if done != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "done=" + url.QueryEscape(done)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// source is the client's address for the audit log.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// problem is an error page's content.
type problem struct {
	Status  int
	Heading string // catalog key
	Detail  string // words for the person (may be empty)
	Hint    string // catalog key
}

// fail answers an error with a clear page: 403 for a refusal (with the
// policy's reasons), 404, 400 for bad input, else 500 (logged, no detail).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	pr := problemOf(err)
	if pr.Status == http.StatusInternalServerError {
		c.log.Error("console", "path", r.URL.Path, "error", err)
	}
	p.Title, p.Data = pr.Heading, pr
	c.render(w, r, pr.Status, "error", p)
}

func problemOf(err error) problem {
	var denied *records.DeniedError
	switch {
	case errors.As(err, &denied):
		return problem{http.StatusForbidden, "error.denied", strings.Join(denied.Decision.Reasons, "; "), "error.denied.hint"}
	case errors.Is(err, identity.ErrForbidden), errors.Is(err, identity.ErrSelfApproval):
		return problem{http.StatusForbidden, "error.denied", err.Error(), "error.denied.hint"}
	case errors.Is(err, records.ErrNotFound), errors.Is(err, errNotFound):
		return problem{http.StatusNotFound, "error.notfound", "", "error.notfound.hint"}
	case errors.Is(err, records.ErrInvalid), errors.Is(err, identity.ErrInvalid), errors.Is(err, errInvalid), errors.Is(err, identity.ErrGrantState):
		return problem{http.StatusBadRequest, "error.invalid", err.Error(), "error.invalid.hint"}
	}
	return problem{http.StatusInternalServerError, "error.internal", "", "error.internal.hint"}
}

// Errors of the console's own input checks.
var (
	errNotFound = errors.New("not found")
	errInvalid  = errors.New("invalid input")
)

// forbidPage answers a page a role may not open.
func (c *Console) forbidPage(w http.ResponseWriter, r *http.Request, p *page, pageKey string) {
	p.Title = "error.role"
	p.Data = problem{Status: http.StatusForbidden, Heading: "error.role", Detail: pageKey, Hint: "error.role.hint"}
	c.render(w, r, http.StatusForbidden, "forbidden", p)
}

func urlQuery(s string) string { return url.QueryEscape(strings.TrimSpace(s)) }

// localPath keeps a redirect target on this site: a path-only URL (no
// scheme, no host, no user) starting with exactly one "/", made of
// printable ASCII without a backslash. Browsers drop tabs and newlines and
// read "\" as "/", so "/\t/evil.example" or "/\\evil.example" would
// leave the site as "//evil.example". Anything else goes to "/".
func localPath(s string) string {
	if len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return "/"
	}
	return s
}
