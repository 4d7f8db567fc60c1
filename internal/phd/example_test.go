package phd_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/medsec/medsec/internal/phd"
)

// The whole path of one message: the device seals, the gateway checks the
// signature and the replay window without the hospital key, the server
// verifies again, opens, assesses and renders.
func Example() {
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	hospital, _ := ecdh.P256().GenerateKey(rand.Reader)
	devicePub, deviceKey, _ := ed25519.GenerateKey(rand.Reader)

	// Device.
	signer, _ := phd.NewDeviceSigner("SN-0001", deviceKey)
	id, _ := phd.NewMessageID()
	msg, _ := phd.Seal(phd.Batch{
		DeviceID: "SN-0001", Patient: "pt-7f3a9c", Seq: 1, MessageID: id, Sent: now,
		Measurements: []phd.Measurement{
			{Code: phd.CodeSpO2, Unit: "%", Value: 97, Time: now.Add(-time.Minute)},
			{Code: phd.CodeBodyTemperature, Unit: "Cel", Value: 44.5, Time: now.Add(-time.Minute)},
			{Code: phd.CodeBodyWeight, Unit: "[lb_av]", Value: 150, Time: now.Add(-time.Minute)},
		},
	}, signer, hospital.PublicKey())

	// Gateway: the certificate gives the device key; the payload stays sealed.
	lim := phd.DefaultLimits()
	s, err := phd.ParseSigned(msg, lim)
	if err != nil {
		fmt.Println("refuse:", phd.ReasonOf(err))
		return
	}
	var window phd.Window
	fmt.Println("signature:", s.Verify(devicePub) == nil)
	fmt.Println("time:", lim.CheckSent(s.Header().Time, now) == nil)
	fmt.Println("sequence:", window.Check(s.Header().Seq))
	window.Mark(s.Header().Seq) // after the message is durably queued
	fmt.Println("again:", window.Check(s.Header().Seq))

	// Server.
	batch, err := phd.Open(s, hospital)
	if err != nil {
		fmt.Println("refuse:", phd.ReasonOf(err))
		return
	}
	a := phd.Assess(batch, now, lim)
	fmt.Println("stored:", len(a.Readings), "flagged:", a.Flagged())
	for _, r := range a.Rejected {
		fmt.Println("rejected:", r.Index, r.Reason)
	}
	obs, _ := phd.RenderObservation(a.Readings[1])
	fmt.Println(obs.Code.Coding[0].Code, obs.Code.Coding[1].Code, obs.ValueQuantity.Code, obs.Interpretation[0].Coding[0].Code)
	// Output:
	// signature: true
	// time: true
	// sequence: new
	// again: replay-duplicate
	// stored: 2 flagged: 1
	// rejected: 2 unit-mismatch
	// 150364 8310-5 Cel HX
}
