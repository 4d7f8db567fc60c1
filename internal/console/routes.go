package console

import (
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (c *Console) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(http.NewCrossOriginProtection().Handler)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/console/", http.StatusSeeOther) })
	r.Get("/lang", c.switchLanguage)
	assets, _ := fs.Sub(assetFS, "assets")
	r.Handle("/assets/*", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	r.Get("/display/{department}", c.displayPage)
	r.Route("/console", c.consoleRoutes)
	r.Route("/portal", c.portalRoutes)
	r.NotFound(c.notFound)
	return r
}

// notFound is the answer to an address that is not there (or not for
// the asker, like the display of a screen that is not enrolled).
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.fail(w, r, &page{Area: "console", Title: "error.notfound"}, errNotFound)
}

func (c *Console) consoleRoutes(r chi.Router) {
	r.Get("/login", c.loginPage)
	r.Post("/login", c.login)
	r.Group(func(r chi.Router) {
		r.Use(c.staffOnly)
		r.Post("/logout", c.logout)
		r.Get("/", c.guard("overview", c.overview))
		r.Get("/overview", c.guard("overview", c.overview))
		r.Get("/alerts", c.guard("alerts", c.alertsPage))
		r.Post("/alerts/{id}/ack", c.guard("alerts", c.acknowledge))
		r.Post("/alerts/{id}/reason", c.guard("alerts", c.breakGlassReason))
		r.Get("/audit", c.guard("audit", c.auditPage))
		r.Get("/audit/proof/{index}", c.guard("audit", c.proof))
		r.Post("/audit/verify", c.guard("alerts", c.verifyNow))
		r.Get("/review", c.guard("review", c.reviewPage))
		r.Post("/review/grants/{id}", c.guard("review", c.decideGrant))
		r.Get("/consents", c.guard("consents", c.consentsPage))
		r.Post("/consents/find", c.guard("consents", c.findConsents))
		r.Post("/consents/record", c.guard("consents", c.recordConsent))
		r.Post("/consents/{id}/withdraw", c.guard("consents", c.withdrawConsent))
		r.Get("/desk", c.guard("desk", c.deskPage))
		r.Post("/desk/tickets", c.guard("desk", c.issueTicket))
		r.Post("/desk/call", c.guard("desk", c.callNext))
		r.Post("/desk/tickets/{id}/done", c.guard("desk", c.finishTicket))
		r.Post("/desk/portal", c.guard("desk", c.issueActivation))
		r.Get("/devices", c.guard("devices", c.devicesPage))
		r.Get("/displays", c.guard("displays", c.displaysPage))
		r.Post("/displays", c.guard("displays", c.enrolDisplay))
		r.Post("/displays/{id}/revoke", c.guard("displays", c.revokeDisplay))
		r.Get("/ledger", c.guard("ledger", c.ledgerPage))
		r.Get("/retention", c.guard("retention", c.retentionPage))
		r.Get("/retention/certificate/{id}", c.guard("retention", c.certificate))
		r.Get("/datasets", c.guard("datasets", c.datasetsPage))
	})
}

func (c *Console) portalRoutes(r chi.Router) {
	r.Get("/login", c.portalLoginPage)
	r.Post("/login", c.portalLogin)
	r.Get("/activate", c.activatePage)
	r.Post("/activate", c.activate)
	r.Group(func(r chi.Router) {
		r.Use(c.patientOnly)
		r.Post("/logout", c.portalLogout)
		r.Get("/", c.portalGuard(c.portalHome))
		r.Get("/access", c.portalGuard(c.portalAccess))
		r.Get("/consents", c.portalGuard(c.portalConsents))
		r.Post("/consents/{id}/withdraw", c.portalGuard(c.portalWithdraw))
		r.Post("/consents/give", c.portalGuard(c.portalGive))
		r.Get("/devices", c.portalGuard(c.portalDevices))
		r.Get("/requests", c.portalGuard(c.portalRequests))
		r.Post("/requests/export", c.portalGuard(c.portalExport))
		r.Post("/requests/erase", c.portalGuard(c.portalErase))
	})
}

// switchLanguage remembers the chosen language for a year and goes back.
func (c *Console) switchLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.URL.Query().Get("to")
	if lang != "ko" && lang != "en" {
		lang = "en"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}
