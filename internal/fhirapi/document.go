package fhirapi

import (
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
)

// exportDocument hands out a note watermarked and sealed to the caller:
// POST DocumentReference/{id}/$export with a Parameters body whose
// "recipient" is the caller's age public key. The answer is the armored age
// file; X-Medsec-Export names the export.
func (a *API) exportDocument(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if a.docs == nil || c.isPatient() {
		a.fail(w, r, c, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "document export is not available to this caller"})
		return
	}
	id, err := internalID(chi.URLParam(r, "id"), "DocumentReference")
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	recipient, err := parameter(r, "recipient")
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	x, err := a.docs.Export(r.Context(), c.req, id, recipient)
	if err != nil {
		a.fail(w, r, c, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+x.ExportID+`.txt.age"`)
	w.Header().Set("X-Medsec-Export", x.ExportID)
	w.WriteHeader(http.StatusOK)
	w.Write(x.Sealed)
}

// traceDocument names the exporter of a leaked copy: POST
// DocumentReference/$trace with the text as the body. Security officers
// only (purpose HOPERAT).
func (a *API) traceDocument(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if a.docs == nil || c.isPatient() || c.staff.Role != identity.RoleSecurityOfficer || c.req.Purpose != "HOPERAT" || !c.staff.MFA {
		a.fail(w, r, c, &apiError{status: http.StatusForbidden, code: "forbidden", msg: "tracing a leaked document is for the security officer, signed in with a second factor, for HOPERAT"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	if err != nil {
		a.fail(w, r, c, &apiError{status: http.StatusRequestEntityTooLarge, code: "too-costly", msg: "the text is larger than the API accepts"})
		return
	}
	f, err := a.docs.Trace(r.Context(), body)
	if err != nil {
		a.fail(w, r, c, unprocessable("%s", err.Error()))
		return
	}
	ev := audit.Event{Actor: c.staff.ID, Role: c.staff.Role, Action: "document.trace", Purpose: c.req.Purpose, Patient: f.Patient,
		Resource: "Export/" + f.ExportID, Outcome: audit.Success, Source: source(r), Reason: "leaked copy traced to " + f.StaffID}
	if _, err := a.h.Audit.Append(r.Context(), ev); err != nil {
		a.fail(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// parameter reads one valueString parameter of a Parameters body.
func parameter(r *http.Request, name string) (string, error) {
	body, err := readBody(r)
	if err != nil {
		return "", err
	}
	var in parametersIn
	if err := decodeStrict(body, &in); err != nil {
		return "", err
	}
	if in.ResourceType != "Parameters" {
		return "", unprocessable("send a Parameters resource with a %q parameter", name)
	}
	for _, p := range in.Parameter {
		if p.Name == name && p.ValueString != nil {
			return *p.ValueString, nil
		}
	}
	return "", unprocessable("the %q parameter (valueString) is required", name)
}
