package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/medsec/medsec/internal/identity"
)

// staffCookie holds the staff session's bearer token (identity's
// server-side session: its idle and absolute timeouts apply).
const staffCookie = "__Host-medsec-staff"

// Pages of the staff console and the roles that may open them. Roles
// decide what each page shows; the door and the alert inbox decide again.
var pageRoles = map[string][]string{
	"overview":  identity.Roles,
	"alerts":    {identity.RoleSecurityOfficer, identity.RoleITAdmin},
	"audit":     {identity.RoleSecurityOfficer},
	"review":    {identity.RoleSecurityOfficer, identity.RoleITAdmin},
	"consents":  {identity.RoleSecurityOfficer, identity.RoleAdministrative, identity.RolePhysician, identity.RoleNurse},
	"desk":      {identity.RoleAdministrative, identity.RoleNurse, identity.RolePhysician},
	"devices":   {identity.RoleSecurityOfficer, identity.RoleITAdmin},
	"displays":  displayRoles,
	"ledger":    {identity.RoleSecurityOfficer, identity.RoleITAdmin},
	"retention": {identity.RoleSecurityOfficer, identity.RoleITAdmin},
	"datasets":  {identity.RoleSecurityOfficer, identity.RoleITAdmin, identity.RoleResearcher},
}

// navOrder is the order of the console's menu.
var navOrder = []string{"overview", "alerts", "audit", "review", "consents", "desk", "devices", "displays", "ledger", "retention", "datasets"}

// rolesFor names the roles that may open a page (for the 403 page).
func rolesFor(pageKey string) []string {
	if pageKey == "desk.registrar" {
		return []string{identity.RoleAdministrative}
	}
	return pageRoles[pageKey]
}

func mayOpen(role, pageKey string) bool { return slices.Contains(pageRoles[pageKey], role) }

type ctxKey int

const principalKey ctxKey = 0

func principalOf(ctx context.Context) identity.Principal {
	p, _ := ctx.Value(principalKey).(identity.Principal)
	return p
}

// staffOnly authenticates the staff session of every console request; an
// ended session goes back to the sign-in page saying why.
func (c *Console) staffOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(staffCookie)
		if err != nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		p, err := c.h.Staff.Sessions.Authenticate(r.Context(), ck.Value, source(r))
		if err != nil {
			clearCookie(w, staffCookie)
			http.Redirect(w, r, "/console/login?ended="+endedReason(err), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

func endedReason(err error) string {
	switch {
	case errors.Is(err, identity.ErrSessionExpired):
		return "expired"
	case errors.Is(err, identity.ErrSessionRevoked):
		return "revoked"
	case errors.Is(err, identity.ErrMFARequired):
		return "mfa"
	}
	return "invalid"
}

// staffPage starts the page of a signed-in member of staff: menu, name,
// CSRF token.
func (c *Console) staffPage(r *http.Request, current, title string) *page {
	p := principalOf(r.Context())
	pg := &page{Area: "console", Title: title, Who: p.DisplayName, Role: p.Role, CSRF: c.csrfToken("staff:" + p.SessionID)}
	for _, key := range navOrder {
		if mayOpen(p.Role, key) {
			pg.Nav = append(pg.Nav, navItem{Href: "/console/" + key, Label: "nav." + key, Current: key == current})
		}
	}
	return pg
}

// guard runs a console page for the roles that may open it; others get a
// 403 page that says which role can.
func (c *Console) guard(pageKey string, h func(http.ResponseWriter, *http.Request, *page)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pg := c.staffPage(r, pageKey, "nav."+pageKey)
		if !mayOpen(principalOf(r.Context()).Role, pageKey) {
			c.forbidPage(w, r, pg, pageKey)
			return
		}
		if r.Method == http.MethodPost && !c.csrfValid(r, "staff:"+principalOf(r.Context()).SessionID) {
			c.csrfFailed(w, r, pg)
			return
		}
		h(w, r, pg)
	}
}

func (c *Console) csrfFailed(w http.ResponseWriter, r *http.Request, pg *page) {
	pg.Title = "error.csrf"
	pg.Data = problem{Status: http.StatusForbidden, Heading: "error.csrf", Hint: "error.csrf.hint"}
	c.render(w, r, http.StatusForbidden, "error", pg)
}

// loginForm is the sign-in page's data.
type loginForm struct {
	Username string
	Ended    string // catalog key of why the last session ended
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	pg := &page{Area: "console", Title: "login.title", CSRF: c.csrfToken("pre:" + preBinding(w, r))}
	form := loginForm{}
	if e := r.URL.Query().Get("ended"); slices.Contains([]string{"expired", "revoked", "mfa", "invalid"}, e) {
		form.Ended = "login.ended." + e
	}
	pg.Data = form
	c.render(w, r, http.StatusOK, "login", pg)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	pre := preBinding(w, r)
	pg := &page{Area: "console", Title: "login.title", CSRF: c.csrfToken("pre:" + pre)}
	if !c.csrfValid(r, "pre:"+pre) {
		c.csrfFailed(w, r, pg)
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	pg.Data = loginForm{Username: username}
	if !c.limiter.allow("login:"+source(r), c.now()) {
		pg.Error = c.views.catalogs[languageOf(r)].text("login.slow")
		c.render(w, r, http.StatusTooManyRequests, "login", pg)
		return
	}
	_, token, err := c.h.Staff.Login(r.Context(), identity.LoginRequest{Username: username, Password: r.PostFormValue("password"),
		TOTP: r.PostFormValue("code"), Source: source(r)})
	if err != nil {
		pg.Error = c.loginError(r, err)
		c.render(w, r, http.StatusUnauthorized, "login", pg)
		return
	}
	setCookie(w, staffCookie, token, 0)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// loginError says why a sign-in failed without saying whether the user
// name exists.
func (c *Console) loginError(r *http.Request, err error) string {
	cat := c.views.catalogs[languageOf(r)]
	var locked *identity.LockedError
	switch {
	case errors.As(err, &locked):
		return cat.text("login.locked", formatTime(locked.Until))
	case errors.Is(err, identity.ErrMFARequired), errors.Is(err, identity.ErrBadSecondFactor):
		return cat.text("login.code.error")
	case errors.Is(err, identity.ErrInactive):
		return cat.text("login.inactive")
	case errors.Is(err, identity.ErrBadCredentials):
		return cat.text("login.bad")
	}
	c.log.Error("staff sign-in", "error", err)
	return cat.text("error.internal")
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	if !c.csrfValid(r, "staff:"+p.SessionID) {
		c.csrfFailed(w, r, c.staffPage(r, "", "error.csrf"))
		return
	}
	if ck, err := r.Cookie(staffCookie); err == nil {
		if err := c.h.Staff.Sessions.Logout(r.Context(), ck.Value, source(r)); err != nil {
			c.log.Warn("staff sign-out", "error", err)
		}
	}
	clearCookie(w, staffCookie)
	http.Redirect(w, r, "/console/login?done=signedout", http.StatusSeeOther)
}
