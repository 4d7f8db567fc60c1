// Package showcase prepares a demo hospital for a newcomer to look around
// the security console, the patient portal and a waiting-room display
// (`medsec demo --serve`): call tickets in a waiting area, an emergency
// access waiting for the security officer's review, consents, a patient
// portal account and a verified audit log — all made through the same
// door, console and audit log as in a real hospital.
package showcase

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/posture"
	"github.com/medsec/medsec/internal/records"
)

// Account is a demo member of staff.
type Account struct {
	Username, Role, Password string
}

// Tour is what a newcomer needs to look around.
type Tour struct {
	Department string // the waiting area with tickets
	// DisplayPath is the address of the waiting area's enrolled screen
	// (its token included): open it once in the browser that plays the
	// screen.
	DisplayPath    string
	PortalUser     string
	PortalPassword string
	Patient        string // the portal patient's pseudonym
}

// Department is the demo's waiting area.
const Department = "internal_medicine"

// Staff the showcase acts as (the demo hospital hires them).
const (
	desk      = "reception"
	ward      = "nurse.lee"
	elsewhere = "nurse.park"
	officer   = "officer.han" // enrols the waiting-room screen
)

var showcaseStaff = []string{desk, ward, elsewhere, officer}

// Prepare fills the demo hospital for the tour. patients are the demo's
// patient ids; erased or destroyed ones are skipped.
func Prepare(ctx context.Context, h *hospital.Hospital, con *console.Console, staff []Account, patients []string) (Tour, error) {
	who, err := signIn(ctx, h, staff)
	if err != nil {
		return Tour{}, err
	}
	living := livingPatients(ctx, h, who[desk], patients)
	if len(living) < 2 {
		return Tour{}, errors.New("showcase: the demo hospital needs at least two living patients")
	}
	t := Tour{Department: Department, Patient: h.Door.Pseudonym(living[0])}
	steps := []func() error{
		func() error { return queue(ctx, con, who, living) },
		func() error { return screen(ctx, con, who[officer], &t) },
		func() error { return breakGlass(ctx, h, who[elsewhere], living[1]) },
		func() error { return consents(ctx, h, who[desk], living[0]) },
		func() error { return portal(ctx, con, who[desk], living[0], &t) },
		func() error { _, err := posture.Verify(ctx, h, "demo"); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return Tour{}, fmt.Errorf("showcase: %w", err)
		}
	}
	return t, nil
}

// signIn authenticates the staff the showcase acts as (in process, as the
// demo itself does).
func signIn(ctx context.Context, h *hospital.Hospital, staff []Account) (map[string]identity.Principal, error) {
	out := map[string]identity.Principal{}
	for _, a := range staff {
		if !slices.Contains(showcaseStaff, a.Username) {
			continue
		}
		p, err := h.Staff.Authenticate(ctx, a.Username, a.Password, "demo")
		if err != nil {
			return nil, fmt.Errorf("showcase: sign in %s: %w", a.Username, err)
		}
		out[a.Username] = p
	}
	if len(out) != len(showcaseStaff) {
		return nil, fmt.Errorf("showcase: the demo accounts %s are needed", strings.Join(showcaseStaff, ", "))
	}
	return out, nil
}

func livingPatients(ctx context.Context, h *hospital.Hospital, clerk identity.Principal, ids []string) []string {
	var out []string
	for _, id := range ids {
		if _, err := h.Door.Patient(ctx, records.Request{Who: clerk, Purpose: "TREAT"}, id); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// queue issues tickets for up to four patients and calls the first.
func queue(ctx context.Context, con *console.Console, who map[string]identity.Principal, living []string) error {
	for _, id := range living[:min(len(living), 4)] {
		if _, err := con.IssueTicketFor(ctx, who[desk], Department, id); err != nil {
			return err
		}
	}
	_, err := con.CallNext(ctx, who[ward], Department, "Room 3")
	return err
}

// screen enrols the waiting area's screen, as the security officer does
// from the console.
func screen(ctx context.Context, con *console.Console, officer identity.Principal, t *Tour) error {
	d, err := con.EnrolDisplay(ctx, officer, Department, "demo waiting area")
	t.DisplayPath = d.Path
	return err
}

// breakGlass has a nurse of another ward open a patient's record in an
// emergency: the door allows it and raises an alert for review.
func breakGlass(ctx context.Context, h *hospital.Hospital, nurse identity.Principal, patient string) error {
	_, err := h.Door.Patient(ctx, records.Request{Who: nurse, Purpose: "ETREAT", BreakGlass: "patient collapsed in the corridor"}, patient)
	return err
}

// consents records the portal patient's signed consents to research and AI
// training, which the patient can withdraw in the portal.
func consents(ctx context.Context, h *hospital.Hospital, clerk identity.Principal, patient string) error {
	for i, purpose := range []string{"HRESCH", "MLTRAINING"} {
		c := records.Consent{Purpose: purpose, Permit: true, FormRef: fmt.Sprintf("demo form %d", i+1)}
		if _, err := h.Door.RecordConsent(ctx, records.Request{Who: clerk, Purpose: "HOPERAT"}, patient, c); err != nil {
			return err
		}
	}
	return nil
}

// portal activates a portal account for the patient, as the patient would
// with the code the desk printed.
func portal(ctx context.Context, con *console.Console, clerk identity.Principal, patient string, t *Tour) error {
	a, err := con.IssueActivationFor(ctx, clerk, patient)
	if err != nil {
		return err
	}
	b := make([]byte, 6)
	rand.Read(b)
	t.PortalUser, t.PortalPassword = "patient.demo", "demo-portal-"+hex.EncodeToString(b)
	return con.Activate(ctx, a.Code, t.PortalUser, t.PortalPassword, "demo")
}
