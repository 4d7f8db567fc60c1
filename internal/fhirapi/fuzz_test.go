package fhirapi

import (
	"errors"
	"testing"
)

// FuzzDecodeStrict feeds arbitrary bodies to the strict decoder of every
// resource the API accepts: it must never panic, and every refusal must be
// an apiError with a 4xx status and a reason.
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"code":"8867-4"}]},"subject":{"reference":"Patient/pt-aaaa"}}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"status":"final","status":"final"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"valueQuantity":{"value":"72"}}`))
	f.Add([]byte("{\"x\":\"\xff\"}"))
	f.Add([]byte(`{"resourceType":"Consent","provision":{"provision":[{"provision":[{}]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, k := range kinds {
			if _, err := k.parse(body); err != nil {
				checkRefusal(t, err)
			}
			if _, err := checkResource(body, k); err != nil {
				checkRefusal(t, err)
			}
		}
		var p parametersIn
		if err := decodeStrict(body, &p); err != nil {
			checkRefusal(t, err)
		}
	})
}

func checkRefusal(t *testing.T, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status < 400 || ae.status > 499 || ae.msg == "" {
		t.Fatalf("refusal %v is not a 4xx with a reason", err)
	}
}

// FuzzSearch feeds arbitrary query strings to the search parser.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{"patient=pt-abc&date=ge2026-01", "date=xx2026", "code=a|b|c", "_count=-1", "date=2026-13-45", "subject=Patient/../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		vals, err := parseQuery(q)
		if err != nil {
			return
		}
		if _, err := parseSearch(vals, "patient", "subject", "code", "date", "_count"); err != nil {
			checkRefusal(t, err)
		}
	})
}
