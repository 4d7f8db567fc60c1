package fhirapi

import (
	"net/http"
	"time"
)

// capabilities answers GET /metadata with the server's CapabilityStatement
// (no authentication: it names no patient).
func (a *API) capabilities(w http.ResponseWriter, r *http.Request) {
	type interaction struct {
		Code string `json:"code"`
	}
	type param struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	type resource struct {
		Type        string        `json:"type"`
		Interaction []interaction `json:"interaction"`
		SearchParam []param       `json:"searchParam,omitempty"`
	}
	recordParams := []param{{"patient", "reference"}, {"code", "token"}, {"date", "date"}, {"_count", "number"}}
	var res []resource
	res = append(res, resource{Type: "Patient", Interaction: []interaction{{"read"}, {"search-type"}, {"create"}},
		SearchParam: []param{{"identifier", "token"}, {"phone", "token"}}})
	for _, k := range kinds {
		res = append(res, resource{Type: k.name, Interaction: []interaction{{"read"}, {"search-type"}, {"create"}}, SearchParam: recordParams})
	}
	res = append(res,
		resource{Type: "Consent", Interaction: []interaction{{"search-type"}, {"create"}}, SearchParam: []param{{"patient", "reference"}}},
		resource{Type: "AuditEvent", Interaction: []interaction{{"search-type"}}, SearchParam: []param{{"patient", "reference"}, {"agent", "reference"}, {"date", "date"}}})
	writeJSON(w, http.StatusOK, map[string]any{
		"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
		"date": startTime.UTC().Format(time.RFC3339), "format": []string{"application/fhir+json"},
		"software": map[string]string{"name": "medsec"},
		"rest": []map[string]any{{"mode": "server", "resource": res,
			"security": map[string]any{"description": "Bearer tokens from POST /fhir/auth/login; purpose of use in " + HeaderPurpose + "; break-glass reason in " + HeaderBreakGlass}}},
	})
}
