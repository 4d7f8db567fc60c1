package fhirapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
)

func TestReadWriteThroughTheAPI(t *testing.T) {
	newEnvs(t, func(t *testing.T, e *env) {
		res, b := e.as("dr.kim", "TREAT", "POST", "/fhir/Observation", observation(e.patient, 72))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create observation: %d %s", res.StatusCode, b)
		}
		var obs map[string]any
		if err := json.Unmarshal(b, &obs); err != nil {
			t.Fatal(err)
		}
		id, _ := obs["id"].(string)
		if obs["resourceType"] != "Observation" || !fhirIDPattern.MatchString(id) || obs["status"] != "final" {
			t.Fatalf("created %s, want an Observation with an id", b)
		}
		res, b = e.as("dr.kim", "TREAT", "GET", "/fhir/Observation/"+id, "")
		if res.StatusCode != http.StatusOK || !json.Valid(b) || !bytes.Contains(b, []byte(`"valueQuantity":{"code":"/min"`)) && !bytes.Contains(b, []byte(`"value":72`)) {
			t.Fatalf("read observation: %d %s", res.StatusCode, b)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("Content-Type %q, want application/fhir+json", ct)
		}
		searches := map[string]int{
			"/fhir/Observation?patient=" + e.patient:                                   1,
			"/fhir/Observation?patient=" + e.patient + "&code=http://loinc.org|8867-4": 1,
			"/fhir/Observation?patient=" + e.patient + "&code=8480-6":                  0,
			"/fhir/Observation?patient=" + e.patient + "&date=2026-03-01":              1,
			"/fhir/Observation?patient=" + e.patient + "&date=ge2026-03-02":            0,
			"/fhir/Observation?subject=Patient/" + e.patient + "&date=lt2026-04":       1,
		}
		for path, want := range searches {
			res, b := e.as("dr.kim", "TREAT", "GET", path, "")
			var bun bundle
			json.Unmarshal(b, &bun)
			if res.StatusCode != http.StatusOK || bun.ResourceType != "Bundle" || bun.Total != want {
				t.Errorf("GET %s: %d, %d results, want %d: %s", path, res.StatusCode, bun.Total, want, b)
			}
		}
		res, b = e.as("dr.kim", "TREAT", "GET", "/fhir/Patient/"+e.patient, "")
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("김민수")) {
			t.Errorf("read patient: %d %s", res.StatusCode, b)
		}
		res, b = e.as("reception", "TREAT", "GET", "/fhir/Patient?identifier="+SystemRRN+"|900101-1234568", "")
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(e.patient)) {
			t.Errorf("find patient by RRN: %d %s", res.StatusCode, b)
		}
	})
}

func TestEveryResourceType(t *testing.T) {
	e := newEnv(t, "")
	p := `"subject":{"reference":"Patient/` + e.patient + `"}`
	bodies := map[string]string{
		"ServiceRequest":    `{"resourceType":"ServiceRequest","status":"active","intent":"order","code":{"coding":[{"system":"http://loinc.org","code":"24331-1"}]},` + p + `,"authoredOn":"2026-03-01"}`,
		"MedicationRequest": `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"coding":[{"system":"http://www.whocc.no/atc","code":"C09AA02"}]},` + p + `}`,
		"DocumentReference": `{"resourceType":"DocumentReference","status":"current","type":{"coding":[{"system":"http://loinc.org","code":"11506-3"}]},` + p + `,"content":[{"attachment":{"contentType":"text/plain","data":"UHJvZ3Jlc3Mgbm90ZQ=="}}]}`,
		"Encounter":         `{"resourceType":"Encounter","status":"planned","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},` + p + `}`,
	}
	for rt, body := range bodies {
		t.Run(rt, func(t *testing.T) {
			res, b := e.as("dr.kim", "TREAT", "POST", "/fhir/"+rt, body)
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("create: %d %s", res.StatusCode, b)
			}
			res, b = e.as("dr.kim", "TREAT", "GET", "/fhir/"+rt+"?patient="+e.patient, "")
			var bun bundle
			json.Unmarshal(b, &bun)
			if res.StatusCode != http.StatusOK || bun.Total != 1 || !bytes.Contains(b, []byte(`"resourceType":"`+rt+`"`)) {
				t.Errorf("search: %d %s", res.StatusCode, b)
			}
		})
	}
}

func TestEncounterChangesCareRelationship(t *testing.T) {
	e := newEnv(t, "")
	// Dr. Choi may not read Dr. Kim's patient…
	if res, _ := e.as("dr.choi", "TREAT", "GET", "/fhir/Patient/"+e.patient, ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("Dr. Choi before the transfer: %d, want 403", res.StatusCode)
	}
	// …until Dr. Kim transfers the patient to surgery with Dr. Choi on the team.
	enc := `{"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},
		"subject":{"reference":"Patient/` + e.patient + `"},"serviceProvider":{"reference":"Organization/surgery"},
		"location":[{"location":{"reference":"Location/7B"}}],
		"participant":[{"type":[{"coding":[{"code":"ATND"}]}],"individual":{"reference":"Practitioner/` + fhirID(e.staff["dr.choi"].ID) + `"}}]}`
	if res, b := e.as("dr.kim", "TREAT", "POST", "/fhir/Encounter", enc); res.StatusCode != http.StatusCreated {
		t.Fatalf("transfer: %d %s", res.StatusCode, b)
	}
	if res, b := e.as("dr.choi", "TREAT", "GET", "/fhir/Patient/"+e.patient, ""); res.StatusCode != http.StatusOK {
		t.Errorf("Dr. Choi after the transfer: %d %s", res.StatusCode, b)
	}
	if res, _ := e.as("nurse.park", "TREAT", "GET", "/fhir/Observation?patient="+e.patient, ""); res.StatusCode != http.StatusOK {
		t.Errorf("nurse of ward 7B after the transfer: %d, want 200", res.StatusCode)
	}
}

// TestAccessOutcomes are the demo's four outcomes over HTTP, decided by
// the shipped policy.
func TestAccessOutcomes(t *testing.T) {
	newEnvs(t, func(t *testing.T, e *env) {
		if res, b := e.as("dr.kim", "TREAT", "POST", "/fhir/Observation", observation(e.patient, 70)); res.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", res.StatusCode, b)
		}
		obs := "/fhir/Observation?patient=" + e.patient
		res, b := e.as("nurse.park", "TREAT", "GET", obs, "")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(outcome(t, b), "ward") {
			t.Errorf("nurse outside her ward: %d %s, want 403 naming the ward rule", res.StatusCode, b)
		}
		if res, b := e.as("dr.kim", "TREAT", "GET", obs, ""); res.StatusCode != http.StatusOK {
			t.Errorf("attending physician: %d %s", res.StatusCode, b)
		}
		res, b = e.as("nurse.park", "ETREAT", "GET", obs, "", HeaderBreakGlass, "patient collapsed in the corridor")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("break-glass: %d %s", res.StatusCode, b)
		}
		got, _ := e.h.Alerts.List(t.Context(), alerts.Filter{Kind: alerts.KindBreakGlass})
		if len(got) != 1 || got[0].Subject != e.staff["nurse.park"].ID {
			t.Errorf("break-glass alerts %+v, want one for nurse Park", got)
		}
		last := lastEvent(e, func(ev audit.Event) bool {
			return ev.Action == "observation.read" && ev.Actor == e.staff["nurse.park"].ID
		})
		if !slices.Contains(last.Flags, "break-glass") || !slices.Contains(last.Flags, "review") {
			t.Errorf("break-glass read flags %v, want break-glass and review", last.Flags)
		}
		res, b = e.as("researcher.yoon", "HRESCH", "GET", obs, "")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(outcome(t, b), "consent") {
			t.Errorf("researcher without consent: %d %s, want 403 naming consent", res.StatusCode, b)
		}
	})
}

func lastEvent(e *env, match func(audit.Event) bool) audit.Event {
	evs := e.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if match(evs[i]) {
			return evs[i]
		}
	}
	e.t.Fatal("no matching audit event")
	return audit.Event{}
}

func TestConsentGivenAndWithdrawn(t *testing.T) {
	newEnvs(t, func(t *testing.T, e *env) {
		e.as("dr.kim", "TREAT", "POST", "/fhir/Observation", observation(e.patient, 70))
		consent := `{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]},
			"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/` + e.patient + `"},
			"sourceReference":{"display":"signed form 2026-0142"},
			"provision":{"type":"permit","purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"HRESCH"}],
			"class":[{"system":"` + SystemDataClass + `","code":"observation"}]}}`
		res, b := e.as("reception", "HOPERAT", "POST", "/fhir/Consent", consent)
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("record consent: %d %s", res.StatusCode, b)
		}
		var c struct{ ID string }
		json.Unmarshal(b, &c)
		obs := "/fhir/Observation?patient=" + e.patient
		if res, b := e.as("researcher.yoon", "HRESCH", "GET", obs, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("researcher with consent: %d %s", res.StatusCode, b)
		}
		withdraw := `{"resourceType":"Parameters","parameter":[{"name":"reason","valueString":"the patient withdrew by phone"}]}`
		if res, b := e.as("reception", "HOPERAT", "POST", "/fhir/Consent/"+c.ID+"/$withdraw", withdraw); res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"inactive"`)) {
			t.Fatalf("withdraw: %d %s", res.StatusCode, b)
		}
		if res, _ := e.as("researcher.yoon", "HRESCH", "GET", obs, ""); res.StatusCode != http.StatusForbidden {
			t.Errorf("researcher right after the withdrawal: %d, want 403", res.StatusCode)
		}
		res, b = e.as("dr.kim", "TREAT", "GET", "/fhir/Consent?patient="+e.patient, "")
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("signed form 2026-0142")) || !bytes.Contains(b, []byte(ExtWithdrawn)) {
			t.Errorf("consent history: %d %s", res.StatusCode, b)
		}
	})
}

func TestAuditEventsForOfficerAndPatient(t *testing.T) {
	newEnvs(t, func(t *testing.T, e *env) {
		e.as("dr.kim", "TREAT", "GET", "/fhir/Patient/"+e.patient, "")
		e.as("dr.choi", "TREAT", "GET", "/fhir/Patient/"+e.other, "")
		if res, _ := e.as("officer.han", "TREAT", "GET", "/fhir/AuditEvent", ""); res.StatusCode != http.StatusForbidden {
			t.Errorf("officer without HOPERAT: %d, want 403", res.StatusCode)
		}
		res, b := e.as("officer.han", "HOPERAT", "GET", "/fhir/AuditEvent?_count=1000", "")
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(e.staff["dr.choi"].ID)) {
			t.Errorf("officer reads the whole log: %d", res.StatusCode)
		}
		if res, _ := e.as("dr.kim", "HOPERAT", "GET", "/fhir/AuditEvent", ""); res.StatusCode != http.StatusForbidden {
			t.Errorf("physician reads the access log: %d, want 403", res.StatusCode)
		}
		res, b = e.as("reception", "TREAT", "POST", "/fhir/Patient/"+e.patient+"/$portal-access", "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("portal access: %d %s", res.StatusCode, b)
		}
		var params struct {
			Parameter []struct{ Name, ValueString string }
		}
		json.Unmarshal(b, &params)
		portal := params.Parameter[0].ValueString
		res, b = e.do("GET", "/fhir/AuditEvent", portal, "", "")
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(e.staff["dr.kim"].ID)) || bytes.Contains(b, []byte(e.staff["dr.choi"].ID)) {
			t.Errorf("patient's own access history: %d %s, want Dr. Kim's read and not Dr. Choi's", res.StatusCode, b)
		}
		if res, _ := e.do("GET", "/fhir/Patient/"+e.other, portal, "", ""); res.StatusCode != http.StatusForbidden {
			t.Errorf("patient reads another patient: %d, want 403", res.StatusCode)
		}
	})
}

func TestDocumentExportIsTraceable(t *testing.T) {
	e := newEnv(t, "")
	note := `{"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/` + e.patient + `"},
		"content":[{"attachment":{"contentType":"text/plain","data":"RGlzY2hhcmdlIHN1bW1hcnk6IHN0YWJsZS4KRm9sbG93IHVwIGluIDIgd2Vla3Mu"}}]}`
	res, b := e.as("dr.kim", "TREAT", "POST", "/fhir/DocumentReference", note)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create note: %d %s", res.StatusCode, b)
	}
	var doc struct{ ID string }
	json.Unmarshal(b, &doc)
	id, _ := age.GenerateX25519Identity()
	params := `{"resourceType":"Parameters","parameter":[{"name":"recipient","valueString":"` + id.Recipient().String() + `"}]}`
	if res, _ := e.as("dr.choi", "TREAT", "POST", "/fhir/DocumentReference/"+doc.ID+"/$export", params); res.StatusCode != http.StatusForbidden {
		t.Errorf("export by a physician without the care relationship: %d, want 403", res.StatusCode)
	}
	res, sealed := e.as("dr.kim", "TREAT", "POST", "/fhir/DocumentReference/"+doc.ID+"/$export", params)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("export: %d %s", res.StatusCode, sealed)
	}
	exportID := res.Header.Get("X-Medsec-Export")
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(sealed)), id)
	if err != nil {
		t.Fatalf("the requester's identity cannot open the export: %v", err)
	}
	var plain bytes.Buffer
	plain.ReadFrom(r)
	text := plain.String()
	if !strings.Contains(text, "Discharge summary: stable.") || !strings.Contains(text, "exported by dr.kim") || !strings.Contains(text, exportID) {
		t.Fatalf("export lacks the text or the visible watermark:\n%s", text)
	}
	lines := strings.Split(text, "\n")
	leak := lines[3] // one line of the body, copied out
	res, b = e.as("officer.han", "HOPERAT", "POST", "/fhir/DocumentReference/$trace", leak)
	if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(e.staff["dr.kim"].ID)) || !bytes.Contains(b, []byte(exportID)) {
		t.Errorf("trace a one-line leak: %d %s, want Dr. Kim and %s", res.StatusCode, b, exportID)
	}
	ev := lastEvent(e, func(ev audit.Event) bool { return ev.Action == "note.export" })
	if ev.Actor != e.staff["dr.kim"].ID || !strings.Contains(ev.Reason, exportID) {
		t.Errorf("export audit event %+v, want Dr. Kim's export %s", ev, exportID)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, "")
	path := "/fhir/Patient/" + e.patient
	if res, _ := e.as("dr.kim", "TREAT", "GET", path, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("fresh token refused: %d", res.StatusCode)
	}
	e.do("POST", "/fhir/auth/logout", e.token["nurse.lee"], "", "")
	e.clock.Advance(16 * time.Minute) // past the idle timeout
	tests := []struct{ name, token, want string }{
		{"expired", e.token["dr.kim"], "expired"},
		{"revoked", e.token["nurse.lee"], "revoked"},
		{"forged", "mss1_" + strings.Repeat("A", 43), "no such session"},
		{"malformed", "not-a-token", "not a medsec session token"},
		{"forged portal", "mpp1_" + strings.Repeat("B", 43), "unknown portal token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.events())
			res, b := e.do("GET", path, tt.token, "TREAT", "")
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(outcome(t, b), tt.want) || res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%d %s, want 401 saying %q", res.StatusCode, b, tt.want)
			}
			if ev := e.events(); len(ev) != before+1 || ev[len(ev)-1].Action != "api.refuse" {
				t.Errorf("the refusal was not audited")
			}
		})
	}
}
