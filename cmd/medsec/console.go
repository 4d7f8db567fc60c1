package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/console/sections"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/server"
)

// verifyEvery is how often medsec serve verifies the whole audit log (the
// posture check wants a verification within 24 hours).
const verifyEvery = 6 * time.Hour

// mountConsole serves the security console, the patient portal and the
// waiting-room displays at the server's root, and verifies the audit log
// now and every verifyEvery until ctx ends.
func mountConsole(ctx context.Context, srv *server.Server, h *hospital.Hospital, logger *slog.Logger) (*console.Console, error) {
	l, err := assembleLife(ctx, h, nil, "serve")
	if err != nil {
		return nil, err
	}
	con, err := console.New(ctx, h, console.Options{Logger: logger, Sections: sections.New(h, l.engine, l.prov)})
	if err != nil {
		return nil, err
	}
	srv.Mount("/", con)
	go console.VerifyEvery(ctx, h, verifyEvery, logger)
	return con, nil
}
