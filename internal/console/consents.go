package console

import (
	"context"
	"net/http"
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
	// Desk and clinicians look a patient up by medical record number.
	MRN      string
	Patients []patientConsents
	CanWrite bool // the registration desk records and withdraws
	Purposes []string
}

type patientConsents struct {
	ID, Pseudonym string
	Consents      []records.Consent
	Now           time.Time
}

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
	d := consentsData{Officer: who.Role == identity.RoleSecurityOfficer, CanWrite: who.Role == identity.RoleAdministrative,
		Purposes: consentPurposes(), MRN: strings.TrimSpace(r.URL.Query().Get("mrn"))}
	var err error
	switch {
	case d.Officer:
		d.Activity, err = c.consentActivity(ctx)
	case d.MRN != "":
		d.Patients, err = c.lookupConsents(ctx, d.MRN)
	}
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "consents", pg)
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

func (c *Console) lookupConsents(ctx context.Context, mrn string) ([]patientConsents, error) {
	who := principalOf(ctx)
	ids, err := c.h.Door.FindPatient(ctx, records.Request{Who: who, Purpose: "TREAT"}, "mrn", mrn)
	if err != nil {
		return nil, err
	}
	var out []patientConsents
	for _, id := range ids {
		cs, err := c.h.Door.Consents(ctx, records.Request{Who: who, Purpose: consentPurpose(who.Role)}, id)
		if err != nil {
			return nil, err
		}
		out = append(out, patientConsents{ID: id, Pseudonym: c.h.Door.Pseudonym(id), Consents: cs, Now: c.now()})
	}
	return out, nil
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
	redirectDone(w, r, "/console/consents?mrn="+urlQuery(r.PostFormValue("mrn")), "consent")
}

func (c *Console) withdrawConsent(w http.ResponseWriter, r *http.Request, pg *page) {
	who := principalOf(r.Context())
	_, err := c.h.Door.WithdrawConsent(r.Context(), records.Request{Who: who, Purpose: consentPurpose(who.Role)},
		chi.URLParam(r, "id"), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, "/console/consents?mrn="+urlQuery(r.PostFormValue("mrn")), "withdrawn")
}
