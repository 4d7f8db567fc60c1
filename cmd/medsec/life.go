package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/records"
)

// life is an open installation with its life-cycle engine and provision
// service wired together.
type life struct {
	h      *hospital.Hospital
	engine *lifecycle.Engine
	prov   *provision.Service
}

// openLife opens the installation and assembles the engine (with the
// retention schedule of the data directory) and the provision service.
// now, when set, is the job's clock (--now).
func openLife(cmd *cobra.Command, now func() time.Time) (*life, error) {
	h, err := openHospital(cmd)
	if err != nil {
		return nil, err
	}
	l, err := assembleLife(cmd.Context(), h, now, cliActor())
	if err != nil {
		h.Close(cmd.Context())
		return nil, err
	}
	// What the console keeps of a patient (call tickets, the portal
	// account) goes with the patient at once, as it does under serve.
	con, err := console.New(cmd.Context(), h, console.Options{})
	if err != nil {
		h.Close(cmd.Context())
		return nil, err
	}
	l.engine.AddSource(con.Traces())
	return l, nil
}

func assembleLife(ctx context.Context, h *hospital.Hospital, now func() time.Time, operator string) (*life, error) {
	schedule, err := lifecycle.LoadSchedule(h.Config.Dir(), h.Config.Jurisdiction)
	if err != nil {
		return nil, err
	}
	engine, err := lifecycle.New(ctx, lifecycle.Config{DB: h.DB, Door: h.Door, Audit: h.Audit, Keys: h.Keys,
		HospitalID: h.Config.Hospital.ID, Schedule: schedule, Now: now, Operator: operator})
	if err != nil {
		return nil, err
	}
	prov, err := provision.New(provision.Config{DB: h.DB, Door: h.Door, Audit: h.Audit, Signer: engine.Signer(),
		Alerts: h.Alerts, Now: now, Operator: operator})
	if err != nil {
		return nil, err
	}
	engine.AddSource(prov)
	ds, err := datasetService(ctx, h, now, operator)
	if err != nil {
		return nil, err
	}
	engine.AddSource(ds)
	intake, err := imagingSource(ctx, h)
	if err != nil {
		return nil, err
	}
	engine.AddSource(intake)
	return &life{h: h, engine: engine, prov: prov}, nil
}

func (l *life) close(ctx context.Context) { l.h.Close(ctx) }

// patientPrincipal signs the patient in through the portal path of the
// door: with the patient's own portal token (MEDSEC_PORTAL_TOKEN), or with
// a quarter-hour access the registration desk (--as) issues for a patient
// standing at the desk. Either way the patient, not staff, reads.
func patientPrincipal(cmd *cobra.Command, h *hospital.Hospital, patientID string) (records.PatientPrincipal, error) {
	if token := os.Getenv("MEDSEC_PORTAL_TOKEN"); token != "" {
		return h.Door.AuthenticatePatient(cmd.Context(), token, cliActor())
	}
	if as, _ := cmd.Flags().GetString("as"); as == "" {
		return records.PatientPrincipal{}, errors.New("the patient reads their own data: set MEDSEC_PORTAL_TOKEN to their portal token, or let the registration desk issue access with --as USERNAME")
	}
	desk, err := staffPrincipal(cmd, h)
	if err != nil {
		return records.PatientPrincipal{}, err
	}
	token, _, err := h.Door.IssuePortalAccess(cmd.Context(), records.Request{Who: desk, Purpose: "TREAT"}, patientID, 15*time.Minute)
	if err != nil {
		return records.PatientPrincipal{}, err
	}
	return h.Door.AuthenticatePatient(cmd.Context(), token, cliActor())
}

// parseTime reads --now and similar flags: RFC 3339 or a date.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: write 2026-05-01 or 2026-05-01T09:00:00Z", s)
}

// clockFlag returns the job clock of --now, or nil for the machine's
// clock. The retention engine checks (and audits) a clock it refuses;
// check makes this function refuse one itself, for jobs without an engine.
func clockFlag(cmd *cobra.Command, check bool) (func() time.Time, error) {
	s, _ := cmd.Flags().GetString("now")
	if s == "" {
		return nil, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return nil, err
	}
	if check {
		if err := lifecycle.CheckClock(t, time.Now(), lifecycle.DefaultClockLimits); err != nil {
			return nil, err
		}
	}
	return func() time.Time { return t }, nil
}

// keyArg reads a key given on the command line or in a file.
func keyArg(v, what string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("no %s given", what)
	}
	if raw, err := os.ReadFile(v); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	return strings.TrimSpace(v), nil
}

// splitFlag splits a comma-separated flag value.
func splitFlag(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// writeOut writes data to a new file (never over an existing one), or to
// standard output for "" or "-".
func writeOut(cmd *cobra.Command, path string, data []byte, mode os.FileMode) error {
	if path == "" || path == "-" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

// startRetention runs retention and the overdue-package check inside
// `medsec serve`, now and every interval, until ctx ends; failures are
// logged and tried again at the next tick.
func startRetention(ctx context.Context, h *hospital.Hospital, every time.Duration, logger *slog.Logger) error {
	if every <= 0 {
		logger.Warn("retention is not scheduled (--retention-every 0): run medsec lifecycle run yourself")
		return nil
	}
	l, err := assembleLife(ctx, h, nil, "serve")
	if err != nil {
		return err
	}
	job := func(ctx context.Context) error {
		res, err := l.engine.Run(ctx, lifecycle.RunOptions{})
		if err != nil {
			return fmt.Errorf("retention run: %w", err)
		}
		logger.Info("retention run", "certificate", res.Certificate.ID, "records", res.Certificate.Records, "patients", res.Certificate.Patients)
		over, err := l.prov.CheckOverdue(ctx)
		if err != nil {
			return fmt.Errorf("overdue check: %w", err)
		}
		if len(over) > 0 {
			logger.Warn("packages overdue for destruction", "count", len(over))
		}
		return nil
	}
	go lifecycle.Every(ctx, every, job, func(err error) { logger.Error("life cycle", "error", err) })
	return nil
}

// withLife opens the installation's life-cycle services, runs fn and
// closes them.
func withLife(cmd *cobra.Command, fn func(l *life) error) error {
	l, err := openLife(cmd, nil)
	if err != nil {
		return err
	}
	defer l.close(cmd.Context())
	return fn(l)
}

// asLifeStaff is withLife for the member of staff named by --as.
func asLifeStaff(cmd *cobra.Command, fn func(l *life, by identity.Principal) error) error {
	return withLife(cmd, func(l *life) error {
		by, err := staffPrincipal(cmd, l.h)
		if err != nil {
			return err
		}
		return fn(l, by)
	})
}
