package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/gateway/pipeline"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
)

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Personal health devices: enrol, list, suspend or revoke, send readings, simulate a fleet"}
	cmd.AddCommand(newDeviceEnrollCmd(), newDeviceActivateCmd(), newDeviceRenewCmd(), newDeviceListCmd(),
		newDeviceStatusCmd("suspend", devices.StatusSuspended, "Suspend a device: the gateways refuse it within seconds until it is resumed"),
		newDeviceStatusCmd("resume", devices.StatusActive, "Resume a suspended device"),
		newDeviceStatusCmd("revoke", devices.StatusRevoked, "Revoke a device for good"),
		newDeviceStatusCmd("lost", devices.StatusLost, "Report a device lost or stolen (final)"),
		newDeviceSendCmd(), newDeviceSimulateCmd())
	return cmd
}

// openAuthority opens the installation and its device authority.
func openAuthority(cmd *cobra.Command) (*hospital.Hospital, *devices.Authority, error) {
	h, err := openHospital(cmd)
	if err != nil {
		return nil, nil, err
	}
	a, err := devices.Open(cmd.Context(), devices.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door, Organization: h.Config.Hospital.Name})
	if err != nil {
		h.Close(cmd.Context())
		return nil, nil, err
	}
	return h, a, nil
}

func newDeviceEnrollCmd() *cobra.Command {
	var patient, model, out, serial, keyType string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "enroll --patient ID --model MODEL",
		Short: "Issue a one-time enrollment token binding a device of MODEL to a patient (only its hash is kept)",
		Long: `enroll issues a one-time, expiring token. The device makes its own key pair and trades
the token and a certificate request for a short-lived certificate bound to its serial,
its model and the patient's pseudonym (medsec device activate).

With --out DIR --serial S, enroll also plays the device on this machine (for test fleets
and demonstrations): it makes the key pair, redeems the token and writes the device's
credentials to DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, a, err := openAuthority(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			if out != "" {
				return enrollLocal(cmd, h, a, patient, serial, model, keyType, out)
			}
			tok, err := a.IssueToken(cmd.Context(), devices.TokenRequest{Kind: devices.KindDevice, PatientID: patient, Model: model, TTL: ttl, By: cliActor()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", tok.Secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "one-time token for a %s of patient %s, valid until %s\n", tok.Model, tok.Patient, tok.Expires.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&patient, "patient", "", "internal id of the patient the device will measure")
	cmd.Flags().StringVar(&model, "model", "", "device model, as its certificate request will name it")
	cmd.Flags().DurationVar(&ttl, "ttl", devices.DefaultTokenTTL, "how long the token stays valid")
	cmd.Flags().StringVar(&out, "out", "", "also play the device here: make its key, redeem the token, write its credentials to this directory")
	cmd.Flags().StringVar(&serial, "serial", "", "the device serial (with --out)")
	cmd.Flags().StringVar(&keyType, "key-type", string(device.KeyP256), "device key: p256 or ed25519 (with --out)")
	cmd.MarkFlagRequired("patient")
	cmd.MarkFlagRequired("model")
	return cmd
}

func enrollLocal(cmd *cobra.Command, h *hospital.Hospital, a *devices.Authority, patient, serial, model, keyType, out string) error {
	if serial == "" {
		return fmt.Errorf("--out needs --serial")
	}
	priv, err := ingest.IngestionKey(cmd.Context(), h.Keys)
	if err != nil {
		return err
	}
	d, err := pipeline.EnrollLocal(cmd.Context(), a, priv.PublicKey(), patient, serial, model, device.KeyType(keyType), out, cliActor())
	if err != nil {
		return err
	}
	id, _ := d.Creds.Identity()
	fmt.Fprintf(cmd.OutOrStdout(), "device %s (%s) enrolled for patient %s; credentials in %s, certificate valid until %s\n",
		id.Serial, id.Model, id.Patient, out, id.NotAfter.Format(time.RFC3339))
	return nil
}

// serverClient is a device-authority client for --server, trusting
// --server-ca (the hospital's TLS certificate, tls/server.crt).
func serverClient(server, serverCA string, creds *devices.Credentials) (*devices.Client, error) {
	ca, err := devices.ReadCertificate(serverCA)
	if err != nil {
		return nil, fmt.Errorf("--server-ca: %w", err)
	}
	roots := newPool(ca)
	return devices.NewClient(strings.TrimSuffix(server, "/")+"/devices", roots, creds), nil
}

func newDeviceActivateCmd() *cobra.Command {
	var server, serverCA, token, serial, model, keyType, out string
	cmd := &cobra.Command{
		Use:   "activate --server URL --server-ca FILE --token TOKEN --serial S --model M --out DIR",
		Short: "On the device: make a key pair and trade the enrollment token for a certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := serverClient(server, serverCA, nil)
			if err != nil {
				return err
			}
			creds, err := c.EnrollDevice(cmd.Context(), token, serial, model, device.KeyType(keyType))
			if err != nil {
				return err
			}
			if err := creds.Save(out); err != nil {
				return err
			}
			id, _ := creds.Identity()
			fmt.Fprintf(cmd.OutOrStdout(), "device %s enrolled for patient %s; certificate valid until %s\n", id.Serial, id.Patient, id.NotAfter.Format(time.RFC3339))
			return nil
		},
	}
	deviceServerFlags(cmd, &server, &serverCA)
	cmd.Flags().StringVar(&token, "token", "", "the enrollment token")
	cmd.Flags().StringVar(&serial, "serial", "", "this device's serial")
	cmd.Flags().StringVar(&model, "model", "", "this device's model")
	cmd.Flags().StringVar(&keyType, "key-type", string(device.KeyP256), "p256 or ed25519")
	cmd.Flags().StringVar(&out, "out", "", "directory for the device's key, certificate and counter")
	for _, f := range []string{"token", "serial", "model", "out"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func deviceServerFlags(cmd *cobra.Command, server, serverCA *string) {
	cmd.Flags().StringVar(server, "server", "", "the hospital server, https://host:port")
	cmd.Flags().StringVar(serverCA, "server-ca", "", "the hospital server's TLS certificate (or its CA) to trust")
	cmd.MarkFlagRequired("server")
	cmd.MarkFlagRequired("server-ca")
}

func newDeviceRenewCmd() *cobra.Command {
	var server, serverCA, dir string
	cmd := &cobra.Command{
		Use:   "renew --dir DIR --server URL --server-ca FILE",
		Short: "On the device: renew its certificate (same key) before it expires",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := devices.LoadCredentials(dir)
			if err != nil {
				return err
			}
			c, err := serverClient(server, serverCA, creds)
			if err != nil {
				return err
			}
			id, err := creds.Identity()
			if err != nil {
				return err
			}
			csr, err := device.CreateCSR(creds.Key, id.Serial, id.Model)
			if err != nil {
				return err
			}
			fresh, err := c.Renew(cmd.Context(), csr)
			if err != nil {
				return err
			}
			creds.Certificate = fresh.Certificate
			if err := creds.Save(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "device %s renewed; certificate valid until %s\n", id.Serial, fresh.Certificate.NotAfter.Format(time.RFC3339))
			return nil
		},
	}
	deviceServerFlags(cmd, &server, &serverCA)
	cmd.Flags().StringVar(&dir, "dir", "", "the device's directory")
	cmd.MarkFlagRequired("dir")
	return cmd
}

func newDeviceListCmd() *cobra.Command {
	var status, kind string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List enrolled devices and gateways with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, a, err := openAuthority(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			ds, err := a.Devices(cmd.Context(), devices.Filter{Kind: devices.Kind(kind), Status: devices.Status(status)})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ds)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tKIND\tMODEL\tPATIENT\tSTATUS\tCERTIFICATE UNTIL")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Serial, d.Kind, d.Model, d.Patient, d.Status, d.NotAfter.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only this status (active, suspended, revoked, lost)")
	cmd.Flags().StringVar(&kind, "kind", "", "only devices or only gateways")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDeviceStatusCmd(use string, to devices.Status, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   use + " SERIAL --reason TEXT",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, a, err := openAuthority(cmd)
			if err != nil {
				return err
			}
			defer h.Close(cmd.Context())
			d, err := a.SetStatus(cmd.Context(), args[0], to, reason, cliActor())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s is now %s (registry revision %d; gateways refuse or accept it at their next poll)\n",
				d.Kind, d.Serial, d.Status, d.Revision)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, in words (audited; no patient data)")
	cmd.MarkFlagRequired("reason")
	return cmd
}

func newDeviceSendCmd() *cobra.Command {
	var dir, gatewayURL string
	var readings int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "send --dir DIR --gateway URL",
		Short: "On the device: measure (simulated readings) and send one sealed message to the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if most := phd.DefaultLimits().MaxMeasurements; readings < 1 || readings > most {
				return fmt.Errorf("--readings %d: a message holds 1 to %d readings", readings, most)
			}
			d, err := gateway.LoadDevice(dir)
			if err != nil {
				return err
			}
			agent, err := d.Agent()
			if err != nil {
				return err
			}
			now := time.Now()
			seed := uint64(now.UnixNano())
			msg, hdr, err := agent.Seal(device.NewGenerator(seed, 0).Batch(readings, now.Add(-time.Minute), time.Minute/time.Duration(max(readings, 1))), now)
			if err != nil {
				return err
			}
			s := gateway.NewSender(gatewayURL, d.Creds)
			defer s.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ack, err := s.SendReliably(ctx, msg)
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("message %s (seq %d) not acknowledged by %s within %s (%v): it is not delivered; send again when the gateway answers",
					hdr.MessageID, hdr.Seq, gatewayURL, timeout, err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "message %s (seq %d, %d readings): %s by the gateway\n", hdr.MessageID, hdr.Seq, readings, ack.Status)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the device's directory")
	cmd.Flags().StringVar(&gatewayURL, "gateway", "", "the gateway, https://host:port")
	cmd.Flags().IntVar(&readings, "readings", 1, "readings in the message")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to resend while the gateway does not answer")
	cmd.MarkFlagRequired("dir")
	cmd.MarkFlagRequired("gateway")
	return cmd
}

func newDeviceSimulateCmd() *cobra.Command {
	var fleet, gatewayURL string
	var n, batch int
	var rate, outOfRange float64
	var duration time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "simulate --fleet DIR --devices N --rate R --duration D --gateway URL",
		Short: "Play realistic readings from N enrolled devices (each at R messages per second) for D",
		Long: `simulate loads the first N device directories under --fleet (made with
medsec device enroll --out or medsec device activate) and plays each device's
readings — blood pressure, pulse, glucose, weight, SpO2, temperature, sleep —
around its patient's baseline, R messages per second per device, for D. It
resends whatever the gateway did not acknowledge and reports what happened.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := gateway.LoadFleet(fleet)
			if err != nil {
				return err
			}
			if n <= 0 || n > len(all) {
				return fmt.Errorf("--devices %d: the fleet in %s has %d devices", n, fleet, len(all))
			}
			rep, err := gateway.Simulate(cmd.Context(), gateway.SimulateOptions{Fleet: all[:n], Gateway: gatewayURL, Rate: rate,
				For: duration, Batch: batch, OutOfRange: outOfRange})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d devices, %.1f s: %d messages sent, %d acknowledged (%d again), %d measurements; refused %v; errors %d; ack p50 %.1f ms, p99 %.1f ms\n",
				rep.Devices, rep.Seconds, rep.Sent, rep.Acknowledged, rep.Duplicates, rep.Measurements, rep.Refused, rep.Errors, rep.P50MS, rep.P99MS)
			return nil
		},
	}
	cmd.Flags().StringVar(&fleet, "fleet", "", "directory holding one directory per device")
	cmd.Flags().IntVar(&n, "devices", 1, "how many devices of the fleet to play")
	cmd.Flags().Float64Var(&rate, "rate", 1, "messages per second per device")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to play")
	cmd.Flags().StringVar(&gatewayURL, "gateway", "", "the gateway, https://host:port")
	cmd.Flags().IntVar(&batch, "batch", 4, "readings per message")
	cmd.Flags().Float64Var(&outOfRange, "out-of-range", 0.01, "chance a reading lies outside physiological limits")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.MarkFlagRequired("fleet")
	cmd.MarkFlagRequired("gateway")
	return cmd
}
