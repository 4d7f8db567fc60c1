// Package posture is the security posture check (`medsec check` and the
// console's overview panel): for the hospital's profile, each requirement
// of the paper's Table 4 (location × requirement) is traced to the medsec
// controls that meet it, and each control is checked against the
// installation's real state — the key file's mode, the server
// certificate, when the audit log last verified, whether any privileged
// account lacks a second factor — not against configuration flags alone.
// The same findings are mapped to the HIPAA Security Rule's technical
// safeguards (§164.312 a–e) and the ISO 27799 control areas.
//
// It serves the paper's Table 3 management requirement for every location:
// a small hospital without security staff sees at once what is not in
// order and what to do about it.
package posture

import (
	"context"
	"crypto/tls"
	"slices"
	"time"

	"github.com/medsec/medsec/internal/console/display"
	"github.com/medsec/medsec/internal/hospital"
)

// State is a control's or a requirement's state.
type State string

// States.
const (
	// Pass: the control is in place and its real state checked out.
	Pass State = "pass"
	// Fail: the control is needed and is missing or broken; Reason says
	// what to do.
	Fail State = "fail"
	// Off: the hospital's profile does not use what the control protects.
	Off State = "off"
)

// Finding is one control's state.
type Finding struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	State  State  `json:"state"`
	Reason string `json:"reason"`
}

// Requirement is one cell of Table 4: a location's security requirement,
// the controls that meet it, and their combined state.
type Requirement struct {
	Location    int      `json:"location"`
	Place       string   `json:"place"`
	Stage       string   `json:"stage"`
	Requirement string   `json:"requirement"`
	Controls    []string `json:"controls"`
	// Required is false when the profile does not use the location.
	Required bool   `json:"required"`
	State    State  `json:"state"`
	Reason   string `json:"reason,omitempty"`
}

// Safeguard is a HIPAA technical safeguard or an ISO 27799 control area
// and the controls that implement it here.
type Safeguard struct {
	Standard string   `json:"standard"`
	Ref      string   `json:"ref"`
	Title    string   `json:"title"`
	Controls []string `json:"controls"`
	State    State    `json:"state"`
}

// Report is a whole posture check.
type Report struct {
	Hospital     string        `json:"hospital"`
	Profile      string        `json:"profile"`
	Checked      time.Time     `json:"checked"`
	Controls     []Finding     `json:"controls"`
	Requirements []Requirement `json:"requirements"`
	Safeguards   []Safeguard   `json:"safeguards"`
	// Failed counts the required controls that fail.
	Failed int `json:"failed"`
}

// OK reports whether every required control passes.
func (r *Report) OK() bool { return r.Failed == 0 }

// Control returns the finding of a control by id.
func (r *Report) Control(id string) (Finding, bool) {
	i := slices.IndexFunc(r.Controls, func(f Finding) bool { return f.ID == id })
	if i < 0 {
		return Finding{}, false
	}
	return r.Controls[i], true
}

// Options tune a check.
type Options struct {
	// Now is the check's instant (zero: time.Now).
	Now time.Time
	// TLS is the connection of a live request (the console's panel); nil
	// checks the server certificate's files only (the CLI).
	TLS *tls.ConnectionState
	// Display are the waiting-room settings; nil loads them from the data
	// directory.
	Display *display.Settings
}

// Check checks every control of the hospital's profile.
func Check(ctx context.Context, h *hospital.Hospital, opt Options) (*Report, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	s, err := gather(ctx, h, opt)
	if err != nil {
		return nil, err
	}
	r := &Report{Hospital: h.Config.Hospital.Name, Profile: h.Config.Profile, Checked: opt.Now}
	for _, c := range controls {
		r.Controls = append(r.Controls, c.run(ctx, s))
	}
	r.Requirements = requirements(r, h.Config.Capabilities)
	r.Safeguards = safeguards(r)
	r.Failed = countFailed(r)
	return r, nil
}

// countFailed counts the controls that a required requirement depends on
// and that do not pass (failing, or switched off although needed).
func countFailed(r *Report) int {
	needed := map[string]bool{}
	for _, q := range r.Requirements {
		if q.Required {
			for _, c := range q.Controls {
				needed[c] = true
			}
		}
	}
	n := 0
	for _, f := range r.Controls {
		if f.State != Pass && needed[f.ID] {
			n++
		}
	}
	return n
}
