package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsentLookupKeepsMRNOutOfAddresses: the desk looks a patient's
// consents up by medical record number with a post; every address that
// follows (the redirect, recording, withdrawing) names the patient by
// pseudonym only, so no MRN reaches the browser's history or a log.
func TestConsentLookupKeepsMRNOutOfAddresses(t *testing.T) {
	f := newFixture(t)
	desk := f.signIn(t, "reception")
	form := desk.get("/console/consents")
	if !strings.Contains(form.body, `method="post" action="/console/consents/find"`) || strings.Contains(form.body, `method="get" action="/console/consents"`) {
		t.Fatalf("the lookup form does not post")
	}
	if r := desk.get("/console/consents?mrn=" + f.mrns[0]); strings.Contains(r.body, f.patients[0].Pseudonym) {
		t.Errorf("a lookup by MRN in the address still works")
	}
	token := desk.csrf("/console/consents")
	r := desk.post("/console/consents/find", url.Values{"csrf": {token}, "mrn": {f.mrns[0]}})
	where := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.Contains(where, f.patients[0].Pseudonym) || strings.Contains(where, f.mrns[0]) {
		t.Fatalf("lookup: %d to %q, want a redirect naming the pseudonym only", r.status, where)
	}
	page := desk.get(where)
	if page.status != http.StatusOK || !strings.Contains(page.body, "HRESCH") {
		t.Fatalf("consents page of %s: %d, want the patient's consent", f.patients[0].Pseudonym, page.status)
	}
	assertNoIdentifiers(t, f, page.body)

	r = desk.post("/console/consents/record", url.Values{"csrf": {token}, "patient": {f.patients[0].ID}, "back": {f.patients[0].Pseudonym},
		"purpose": {"MLTRAINING"}, "permit": {"yes"}, "form": {"form 2026-18"}})
	if where := r.header.Get("Location"); r.status != http.StatusSeeOther || !strings.Contains(where, f.patients[0].Pseudonym) || strings.Contains(where, "MRN") {
		t.Errorf("record consent: %d to %q", r.status, where)
	}
	if r := desk.post("/console/consents/find", url.Values{"csrf": {token}, "mrn": {"MRN-none"}}); r.status != http.StatusNotFound || !strings.Contains(r.body, "No patient has this medical record number") {
		t.Errorf("lookup of an unknown MRN: %d", r.status)
	}
	if r := desk.get("/console/consents?patient=" + url.QueryEscape("P-'><script>")); r.status != http.StatusBadRequest {
		t.Errorf("a malformed pseudonym: %d, want 400", r.status)
	}
}
