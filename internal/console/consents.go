package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/access"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// consentPurposes are the purposes a consent record can name: those that
// need a consent.
func consentPurposes() []string {
	var out []string
	for _, p := range access.Purposes() {
		if p.NeedsConsent {
			out = append(out, string(p.Code))
		}
	}
	return out
}

type consentsData struct {
	// The security officer sees the recent consent changes in the log.
	Activity []auditRow
	Officer  bool
	// Desk and clinicians look a patient up by medical record number
	// (posted, never in an address); the page then names the patients by
	// pseudonym.
	MRN      string
	Looked   bool // a lookup found nobody
	Patients []patientConsents
	CanWrite bool // the registration desk records and withdraws
	Purposes []string
}

type patientConsents struct {
	ID, Pseudonym string
	Consents      []records.Consent
	Now           time.Time
}

// pseudonymPattern is the form of records.Door.Pseudonym.
var pseudonymPattern = regexp.MustCompile(`^P-[a-z2-7]{12}$`)

// maxConsentPatients bounds the patients one consents page shows.
const maxConsentPatients = 10

// consentPurpose is the purpose under which a role handles consent
// records: the desk for operations, clinicians for treatment.
func consentPurpose(role string) string {
	if role == identity.RoleAdministrative {
		return "HOPERAT"
	}
	return "TREAT"
}

func (c *Console) consentsPage(w http.ResponseWriter, r *http.Request, pg *page) {
	ctx := r.Context()
	who := principalOf(ctx)
	d := consentsData{Officer: who.Role == identity.RoleSecurityOfficer, CanWrite: who.Role == identity.RoleAdministrative, Purposes: consentPurposes()}
	var err error
	switch {
	case d.Officer:
		d.Activity, err = c.consentActivity(ctx)
	default:
		d.Patients, err = c.consentsOf(ctx, r.URL.Query()["patient"])
	}
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "consents", pg)
}

// findConsents looks the posted medical record number up and redirects to
// the page of the patients it names, by pseudonym, so the number stays out
// of the address bar, the history and the server's logs.
func (c *Console) findConsents(w http.ResponseWriter, r *http.Request, pg *page) {
	mrn := strings.TrimSpace(r.PostFormValue("mrn"))
	ids, err := c.lookupMRN(r.Context(), mrn)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	if len(ids) == 0 {
		who := principalOf(r.Context())
		pg.Data = consentsData{MRN: mrn, Looked: true, CanWrite: who.Role == identity.RoleAdministrative, Purposes: consentPurposes()}
		c.render(w, r, http.StatusNotFound, "consents", pg)
		return
	}
	pseudonyms := make([]string, len(ids))
	for i, id := range ids {
		pseudonyms[i] = c.h.Door.Pseudonym(id)
	}
	http.Redirect(w, r, consentsURL(pseudonyms), http.StatusSeeOther)
}

func (c *Console) lookupMRN(ctx context.Context, mrn string) ([]string, error) {
	if mrn == "" || len(mrn) > 64 {
		return nil, fmt.Errorf("%w: enter the medical record number", errInvalid)
	}
	ids, err := c.h.Door.FindPatient(ctx, records.Request{Who: principalOf(ctx), Purpose: "TREAT"}, "mrn", mrn)
	if len(ids) > maxConsentPatients {
		ids = ids[:maxConsentPatients]
	}
	return ids, err
}

// consentsURL is the consents page of patients named by pseudonym.
func consentsURL(pseudonyms []string) string {
	q := url.Values{"patient": pseudonyms}
	return "/console/consents?" + q.Encode()
}

// consentActivity reads the log's consent events through the door.
func (c *Console) consentActivity(ctx context.Context) ([]auditRow, error) {
	events, err := c.h.Door.AuditEvents(ctx, records.Request{Who: principalOf(ctx), Purpose: "HOPERAT"},
		records.AuditFilter{Action: records.ClassConsent + ".", Limit: 100})
	if err != nil {
		return nil, err
	}
	names := c.usernames(ctx)
	out := make([]auditRow, 0, len(events))
	for i := len(events) - 1; i >= 0; i-- {
		out = append(out, auditRow{Event: events[i], Who: names[events[i].Actor]})
	}
	return out, nil
}

// consentsOf reads the consent records of patients named by pseudonym
// through the door (decided and audited).
func (c *Console) consentsOf(ctx context.Context, pseudonyms []string) ([]patientConsents, error) {
	who := principalOf(ctx)
	var out []patientConsents
	for _, p := range pseudonyms[:min(len(pseudonyms), maxConsentPatients)] {
		if !pseudonymPattern.MatchString(p) {
			return nil, fmt.Errorf("%w: %q is not a patient pseudonym", errInvalid, truncate(p, 20))
		}
		id, err := c.h.Door.ResolvePseudonym(ctx, p)
		if err != nil {
			return nil, err
		}
		cs, err := c.h.Door.Consents(ctx, records.Request{Who: who, Purpose: consentPurpose(who.Role)}, id)
		if err != nil {
			return nil, err
		}
		out = append(out, patientConsents{ID: id, Pseudonym: p, Consents: cs, Now: c.now()})
	}
	return out, nil
}

// backToConsents is where a change on the consents page returns: the
// page of the patients it showed.
func backToConsents(r *http.Request) string {
	var ps []string
	for _, p := range r.PostForm["back"] {
		if pseudonymPattern.MatchString(p) && len(ps) < maxConsentPatients {
			ps = append(ps, p)
		}
	}
	return consentsURL(ps)
}

// recordConsent records a signed consent form at the desk.
func (c *Console) recordConsent(w http.ResponseWriter, r *http.Request, pg *page) {
	who := principalOf(r.Context())
	until, err := parseDay(r.PostFormValue("until"), true)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	purpose := r.PostFormValue("purpose")
	if !contains(consentPurposes(), purpose) {
		c.fail(w, r, pg, errInvalid)
		return
	}
	rec := records.Consent{Purpose: purpose, Permit: r.PostFormValue("permit") == "yes", Until: until,
		FormRef: strings.TrimSpace(r.PostFormValue("form"))}
	_, err = c.h.Door.RecordConsent(r.Context(), records.Request{Who: who, Purpose: consentPurpose(who.Role)}, r.PostFormValue("patient"), rec)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, backToConsents(r), "consent")
}

func (c *Console) withdrawConsent(w http.ResponseWriter, r *http.Request, pg *page) {
	who := principalOf(r.Context())
	_, err := c.h.Door.WithdrawConsent(r.Context(), records.Request{Who: who, Purpose: consentPurpose(who.Role)},
		chi.URLParam(r, "id"), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, backToConsents(r), "withdrawn")
}
