package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/server"
)

// apiBench is the result of `medsec bench api`.
type apiBench struct {
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"requests_per_second"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	Concurrency int     `json:"concurrency"`
	Path        string  `json:"path"`
}

func newBenchAPICmd() *cobra.Command {
	var conc, records int
	var dur time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "api",
		Short: "GET /fhir/Observation/{id} against a real `medsec serve` (second process, TLS on loopback): requests/s and p50/p90/p99",
		Long: `api builds a throwaway installation on SQLite, stores sealed observations of one patient,
signs a physician in, starts ` + "`medsec serve`" + ` as a second process and sends authenticated reads
over keep-alive TLS connections on loopback. Each read is authenticated, decided by the Cedar
policy, audited durably and unsealed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := benchAPI(cmd.Context(), conc, records, dur)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "GET %s: %d requests in %.1fs, %d errors, %.0f requests/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (%d connections)\n",
				res.Path, res.Requests, res.Seconds, res.Errors, res.PerSecond, res.P50ms, res.P90ms, res.P99ms, res.Concurrency)
			return nil
		},
	}
	cmd.Flags().IntVar(&conc, "concurrency", 32, "parallel keep-alive connections")
	cmd.Flags().IntVar(&records, "records", 1000, "observations to read at random")
	cmd.Flags().DurationVar(&dur, "duration", 10*time.Second, "measured load time (after 2 s of warm-up)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// benchFixture is the installation the bench reads from.
type benchFixture struct {
	dir, pass, token string
	dsn              string // PostgreSQL instead of SQLite when set
	ids              []string
	pool             *x509.CertPool
}

func benchAPI(ctx context.Context, conc, n int, dur time.Duration) (apiBench, error) {
	fx, err := prepareBench(ctx, n)
	if err != nil {
		return apiBench{}, err
	}
	defer os.RemoveAll(fx.dir)
	addr, stop, err := startServer(ctx, fx)
	if err != nil {
		return apiBench{}, err
	}
	defer stop()
	return runLoad(ctx, fx, addr, conc, dur)
}

func prepareBench(ctx context.Context, n int) (*benchFixture, error) {
	dir, err := os.MkdirTemp("", "medsec-bench-api-")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 12)
	rand.Read(b)
	fx := &benchFixture{dir: dir, pass: hex.EncodeToString(b)}
	if err := fx.fill(ctx, n); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return fx, nil
}

func (fx *benchFixture) fill(ctx context.Context, n int) error {
	_, err := hospital.Init(ctx, hospital.InitOptions{Dir: fx.dir, Profile: "small", HospitalName: "bench", Passphrase: []byte(fx.pass),
		AdminPassword: "violet harbor lantern " + fx.pass, KDF: keys.KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}, DSN: fx.dsn})
	if err != nil {
		return err
	}
	h, err := hospital.Open(ctx, fx.dir, hospital.OpenOptions{Passphrase: []byte(fx.pass), DSN: fx.dsn})
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	pw := "bench physician passphrase " + fx.pass
	doc, err := h.Staff.Create(ctx, identity.NewStaff{Username: "dr.bench", DisplayName: "Dr. Bench", Role: identity.RolePhysician, Department: "internal_medicine", Password: pw})
	if err != nil {
		return err
	}
	if _, fx.token, err = h.Staff.Login(ctx, identity.LoginRequest{Username: "dr.bench", Password: pw, Source: "bench"}); err != nil {
		return err
	}
	if _, err := h.Staff.Create(ctx, identity.NewStaff{Username: "desk.bench", DisplayName: "Desk", Role: identity.RoleAdministrative, Password: pw}); err != nil {
		return err
	}
	desk, err := h.Staff.Authenticate(ctx, "desk.bench", pw, "bench")
	if err != nil {
		return err
	}
	p, err := h.Door.RegisterPatient(ctx, records.Request{Who: desk, Purpose: "TREAT"}, records.Patient{Name: "Bench Patient", Attending: doc.ID})
	if err != nil {
		return fmt.Errorf("register the bench patient: %w", err)
	}
	return fx.observations(ctx, h, p.ID, n)
}

// observations stores n heart-rate observations as the ingestion job would.
func (fx *benchFixture) observations(ctx context.Context, h *hospital.Hospital, patient string, n int) error {
	recs := make([]records.Record, n)
	for i := range recs {
		body := fmt.Sprintf(`{"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-03-01T09:%02d:00Z","valueQuantity":{"value":%d,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`,
			patient, i%60, 60+i%40)
		recs[i] = records.Record{Class: records.ClassObservation, Code: "8867-4", Payload: []byte(body), Source: "bench"}
	}
	ids, err := h.Door.AddRecords(ctx, records.Request{Who: identity.System("ingest"), Purpose: "TREAT"}, patient, recs)
	if err != nil {
		return err
	}
	for _, id := range ids {
		fx.ids = append(fx.ids, "rec-"+id[len("rec_"):])
	}
	cert, err := server.LoadOrCreateCertificate(h.Config)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	fx.pool = x509.NewCertPool()
	fx.pool.AddCert(leaf)
	return nil
}

// serveProc is a `medsec serve` child process.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
}

// stop interrupts the server (a clean shutdown) and waits for it.
func (p *serveProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
}

// kill ends the server with SIGKILL, as a crash would, and reaps it.
func (p *serveProc) kill() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// startServer runs `medsec serve` (this binary) on a free loopback port.
func startServer(ctx context.Context, fx *benchFixture) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	p, err := startServe(ctx, self, fx)
	if err != nil {
		return "", nil, err
	}
	return p.addr, p.stop, nil
}

// startServe runs bin serve on a free loopback port and waits until it
// answers.
func startServe(ctx context.Context, bin string, fx *benchFixture) (*serveProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &serveProc{addr: ln.Addr().String()}
	ln.Close()
	p.cmd = exec.CommandContext(ctx, bin, "serve", "--data", fx.dir, "--listen", p.addr)
	p.cmd.Env = append(os.Environ(), "MEDSEC_PASSPHRASE="+fx.pass)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, io.Discard
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	client := fx.client(1)
	for range 100 {
		if res, err := client.Get("https://" + p.addr + "/healthz"); err == nil {
			res.Body.Close()
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, errors.New("medsec serve did not answer within 10 s")
}

func (fx *benchFixture) client(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: fx.pool, ServerName: "localhost", MinVersion: tls.VersionTLS13},
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, ForceAttemptHTTP2: false}}
}

// runLoad sends reads from conc workers: 2 s of warm-up, then dur
// measured.
func runLoad(ctx context.Context, fx *benchFixture, addr string, conc int, dur time.Duration) (apiBench, error) {
	client := fx.client(conc)
	warm := time.Now().Add(2 * time.Second)
	end := warm.Add(dur)
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, bad := fx.worker(ctx, client, addr, w, warm, end)
			mu.Lock()
			lat, errs = append(lat, mine...), errs+bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		return apiBench{}, fmt.Errorf("no request succeeded (%d errors)", errs)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	return apiBench{Requests: len(lat), Errors: errs, Seconds: dur.Seconds(), PerSecond: float64(len(lat)) / dur.Seconds(),
		P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), Concurrency: conc, Path: "/fhir/Observation/{id}"}, nil
}

func (fx *benchFixture) worker(ctx context.Context, client *http.Client, addr string, w int, warm, end time.Time) ([]time.Duration, int) {
	var lat []time.Duration
	bad := 0
	for i := w; ctx.Err() == nil; i++ {
		start := time.Now()
		if start.After(end) {
			break
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/fhir/Observation/"+fx.ids[(i*7919)%len(fx.ids)], nil)
		req.Header.Set("Authorization", "Bearer "+fx.token)
		req.Header.Set("X-Purpose-Of-Use", "TREAT")
		res, err := client.Do(req)
		ok := err == nil && res.StatusCode == http.StatusOK
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		if start.Before(warm) {
			continue
		}
		if !ok {
			bad++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return lat, bad
}
