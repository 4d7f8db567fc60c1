package pipeline_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/gateway/pipeline"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/ingest"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/phd"
	"github.com/medsec/medsec/internal/phd/device"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/server"
)

// TestFaults runs `medsec serve` and `medsec gateway` as real processes on
// loopback and breaks them while devices send: the gateway killed (-9) in
// the middle of a stream, the server stopped for seconds, the server
// killed (-9) during ingestion. At the end every message a device saw
// acknowledged must be stored exactly once.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests build medsec and run it as processes")
	}
	in := newInstallation(t)
	top := t // processes outlive the subtests that restart them
	srv := in.startServer(t)
	gw := in.startGateway(t)
	ledger := newLedger()

	t.Run("gateway killed mid-stream", func(t *testing.T) {
		stream := in.stream(ledger, 30, 2)
		in.waitAcked(t, ledger, 20)
		gw.kill(t)
		time.Sleep(300 * time.Millisecond)
		gw = in.startGateway(top)
		stream.wait(t)
	})
	t.Run("server away for seconds", func(t *testing.T) {
		srv.stop(t)
		stream := in.stream(ledger, 15, 2)
		time.Sleep(3 * time.Second)
		if q := in.queued(t); q == 0 {
			t.Errorf("nothing queued at the gateway while the server was away")
		}
		srv = in.startServer(top)
		stream.wait(t)
	})
	t.Run("server killed during ingestion", func(t *testing.T) {
		srv.stop(t)
		stream := in.stream(ledger, 40, 8)
		stream.wait(t) // everything acknowledged and queued at the gateway
		srv = in.startServer(top)
		in.waitForwarding(t)
		srv.kill(t)
		srv = in.startServer(top)
	})
	in.waitDrained(t)
	gw.stop(t)
	srv.stop(t)
	in.checkExactlyOnce(t, ledger)
	if t.Failed() {
		t.Logf("gateway log:\n%s\nserver log:\n%s", in.log("gateway"), in.log("serve"))
	}
}

// installation is a hospital data directory with patients, a device
// fleet and a gateway directory, and the medsec binary to run them.
type installation struct {
	bin, hosp, gwDir, pass string
	serverAddr, gwAddr     string
	metricsAddr            string
	fleet                  []gateway.FleetDevice
	patients               []string
	doctor, doctorPassword string
	logs                   string
}

func newInstallation(t *testing.T) *installation {
	t.Helper()
	dir := t.TempDir()
	in := &installation{bin: buildMedsec(t, dir), hosp: filepath.Join(dir, "hospital"), gwDir: filepath.Join(dir, "gateway"),
		pass: "fault test passphrase", logs: dir,
		serverAddr: freeAddr(t), gwAddr: freeAddr(t), metricsAddr: freeAddr(t)}
	ctx := context.Background()
	_, err := hospital.Init(ctx, hospital.InitOptions{Dir: in.hosp, Profile: "large", HospitalName: "Fault Test Hospital",
		Passphrase: []byte(in.pass), AdminPassword: "correct-horse-battery-7", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, in.hosp, hospital.OpenOptions{Passphrase: []byte(in.pass)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	in.prepare(t, h, filepath.Join(dir, "fleet"))
	return in
}

// buildMedsec builds the medsec binary of this module into dir.
func buildMedsec(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "medsec")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/medsec/medsec/cmd/medsec").CombinedOutput()
	if err != nil {
		t.Fatalf("build medsec: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// prepare registers two patients of one physician, enrols four devices
// and the gateway, and writes the gateway's directory.
func (in *installation) prepare(t *testing.T, h *hospital.Hospital, fleetDir string) {
	t.Helper()
	ctx := context.Background()
	desk, doctor := staff(t, h, "fault.desk", identity.RoleAdministrative), staff(t, h, "fault.doctor", identity.RolePhysician)
	in.doctor = "fault.doctor"
	for i := range 2 {
		p, err := h.Door.RegisterPatient(ctx, records.Request{Who: desk, Purpose: "TREAT"},
			records.Patient{Name: fmt.Sprintf("Fault Patient %d", i), Department: "internal_medicine", Attending: doctor.ID})
		if err != nil {
			t.Fatal(err)
		}
		in.patients = append(in.patients, p.ID)
	}
	a, err := devices.Open(ctx, devices.Config{DB: h.DB, Keys: h.Keys, Audit: h.Audit, Door: h.Door})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ingest.IngestionKey(ctx, h.Keys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		d, err := pipeline.EnrollLocal(ctx, a, priv.PublicKey(), in.patients[i%2], fmt.Sprintf("FAULT-%d", i), "HEM-9200T",
			device.KeyP256, filepath.Join(fleetDir, strconv.Itoa(i)), "test")
		if err != nil {
			t.Fatal(err)
		}
		in.fleet = append(in.fleet, d)
	}
	in.prepareGateway(t, h, a)
}

var passwords = map[string]string{}

func staff(t *testing.T, h *hospital.Hospital, name, role string) identity.Principal {
	t.Helper()
	pw := fmt.Sprintf("staple-orbit-%d-lantern", len(passwords)+11)
	passwords[name] = pw
	if _, err := h.Staff.Create(context.Background(), identity.NewStaff{Username: name, DisplayName: name, Role: role,
		Department: "internal_medicine", Password: pw}); err != nil {
		t.Fatal(err)
	}
	p, err := h.Staff.Authenticate(context.Background(), name, pw, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (in *installation) prepareGateway(t *testing.T, h *hospital.Hospital, a *devices.Authority) {
	t.Helper()
	ctx := context.Background()
	tok, err := a.IssueToken(ctx, devices.TokenRequest{Kind: devices.KindGateway, Model: "gw-fault", By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := device.GenerateKey(device.KeyP256)
	csr, _ := devices.CreateGatewayCSR(key, "gw-fault", []string{"127.0.0.1"})
	iss, err := a.Enroll(ctx, tok.Secret, csr)
	if err != nil {
		t.Fatal(err)
	}
	creds := &devices.Credentials{Key: key, Certificate: iss.Certificate, CA: a.CA()}
	if err := creds.Save(filepath.Join(in.gwDir, "credentials")); err != nil {
		t.Fatal(err)
	}
	cert, err := server.LoadOrCreateCertificate(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.WriteFile(filepath.Join(in.gwDir, "upstream-ca.pem"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
}

// proc is a running medsec process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func (in *installation) start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(in.logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(in.bin, args...)
	cmd.Env = append(os.Environ(), "MEDSEC_PASSPHRASE="+in.pass)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { p.kill(t) })
	return p
}

func (in *installation) startServer(t *testing.T) *proc {
	t.Helper()
	p := in.start(t, "serve", "serve", "--data", in.hosp, "--listen", in.serverAddr)
	in.waitTLS(t, p, in.serverAddr)
	return p
}

func (in *installation) startGateway(t *testing.T) *proc {
	t.Helper()
	p := in.start(t, "gateway", "gateway", "--data", in.gwDir, "--listen", in.gwAddr, "--upstream", "https://"+in.serverAddr,
		"--metrics", in.metricsAddr, "--device-rate", "-1")
	in.waitTLS(t, p, in.gwAddr)
	return p
}

// waitTLS waits until the process answers TLS handshakes on addr.
func (in *installation) waitTLS(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, err, in.log(p.name))
		default:
		}
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only probing readiness
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not listening on %s after 60 s\n%s", p.name, addr, in.log(p.name))
}

func (in *installation) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(in.logs, name+".log"))
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// kill sends SIGKILL (kill -9) and reaps the process.
func (p *proc) kill(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
}

// stop asks the process to stop (SIGTERM) and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		p.done <- nil
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop in 30 s", p.name)
		p.kill(t)
	}
}

// ledger is what the devices saw acknowledged: message id → readings.
type ledger struct {
	mu    sync.Mutex
	acked map[phd.MessageID]int
}

func newLedger() *ledger { return &ledger{acked: map[phd.MessageID]int{}} }

func (l *ledger) add(id phd.MessageID, n int) {
	l.mu.Lock()
	l.acked[id] = n
	l.mu.Unlock()
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// stream is the fleet sending in the background.
type stream struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// stream makes every device send msgs messages of n readings, each resent
// until acknowledged (the device retries through gateway restarts).
func (in *installation) stream(l *ledger, msgs, n int) *stream {
	s := &stream{}
	for i, fd := range in.fleet {
		s.wg.Go(func() {
			if err := in.play(fd, uint64(i), msgs, n, l); err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, err)
				s.mu.Unlock()
			}
		})
	}
	return s
}

func (in *installation) play(fd gateway.FleetDevice, seed uint64, msgs, n int, l *ledger) error {
	agent, err := fd.Agent()
	if err != nil {
		return err
	}
	sender := gateway.NewSender("https://"+in.gwAddr, fd.Creds)
	defer sender.Close()
	gen := device.NewGenerator(seed+1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range msgs {
		now := time.Now()
		msg, hdr, err := agent.Seal(gen.Batch(n, now.Add(-time.Minute), time.Second), now)
		if err != nil {
			return err
		}
		if _, err := sender.SendReliably(ctx, msg); err != nil {
			return fmt.Errorf("%s seq %d: %w", hdr.DeviceID, hdr.Seq, err)
		}
		l.add(hdr.MessageID, n)
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (s *stream) wait(t *testing.T) {
	t.Helper()
	s.wg.Wait()
	for _, err := range s.errs {
		t.Error(err)
	}
}

func (in *installation) waitAcked(t *testing.T, l *ledger, n int) {
	t.Helper()
	for range 600 {
		if l.len() >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("only %d messages acknowledged", l.len())
}

// metric reads one gauge or counter from the gateway's metrics.
func (in *installation) metric(t *testing.T, name string) (float64, bool) {
	resp, err := http.Get("http://" + in.metricsAddr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func (in *installation) queued(t *testing.T) float64 {
	q, _ := in.metric(t, "medsec_gateway_queued")
	return q
}

// waitForwarding waits until the gateway has delivered some of its queue
// and not yet all of it: the server is mid-ingestion.
func (in *installation) waitForwarding(t *testing.T) {
	t.Helper()
	start, _ := in.metric(t, "medsec_gateway_forwarded_total")
	for range 3000 {
		f, _ := in.metric(t, "medsec_gateway_forwarded_total")
		if f > start || in.queued(t) == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the gateway did not start forwarding")
}

func (in *installation) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if q, ok := in.metric(t, "medsec_gateway_queued"); ok && q == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gateway queue not drained after 90 s (%v left)\n%s", in.queued(t), in.log("gateway"))
}

// checkExactlyOnce reads every stored reading back through the door and
// compares with what the devices saw acknowledged.
func (in *installation) checkExactlyOnce(t *testing.T, l *ledger) {
	t.Helper()
	ctx := context.Background()
	h, err := hospital.Open(ctx, in.hosp, hospital.OpenOptions{Passphrase: []byte(in.pass)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	doctor, err := h.Staff.Authenticate(ctx, in.doctor, passwords[in.doctor], "test")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[phd.MessageID]int{}
	for _, id := range in.patients {
		recs, err := h.Door.Records(ctx, records.Request{Who: doctor, Purpose: "TREAT"}, id, records.Filter{Class: records.ClassObservation})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Code == ingest.ProvenanceCode {
				continue
			}
			rd, err := phd.DecodeReading(r.Payload)
			if err != nil {
				t.Fatal(err)
			}
			stored[rd.MessageID]++
		}
	}
	lost, twice := 0, 0
	for id, n := range l.acked {
		switch got := stored[id]; {
		case got < n:
			lost++
		case got > n:
			twice++
		}
	}
	t.Logf("%d messages acknowledged, %d stored", len(l.acked), len(stored))
	if lost+twice > 0 || len(stored) != len(l.acked) {
		t.Errorf("%d acknowledged messages lost, %d stored more than once, %d stored in all for %d acknowledged", lost, twice, len(stored), len(l.acked))
	}
}
