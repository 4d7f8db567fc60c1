package fhirapi

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// BenchmarkGetObservation reads one observation over HTTPS (TLS 1.3 on
// loopback, in process) as the attending physician: bearer-session
// authentication, the Cedar decision, the durable audit event (group
// commit) and unsealing, from 64 concurrent clients. `medsec bench api`
// measures the same with the server in its own process.
func BenchmarkGetObservation(b *testing.B) {
	e := newEnv(b, "")
	res, body := e.as("dr.kim", "TREAT", "POST", "/fhir/Observation", observation(e.patient, 72))
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("create: %d %s", res.StatusCode, body)
	}
	var obs struct{ ID string }
	json.Unmarshal(body, &obs)
	url := e.srv.URL + "/fhir/Observation/" + obs.ID
	token := e.token["dr.kim"]
	client := e.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 128
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set(HeaderPurpose, "TREAT")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
