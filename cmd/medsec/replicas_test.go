package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/store/storetest"
)

// TestReplicasShareOnePostgres runs two `medsec serve` processes on one
// PostgreSQL database, as a large hospital does. Both serve audited reads
// at once; one is killed with SIGKILL in the middle. The other keeps
// serving, the audit log verifies, and it holds a read event for every
// read either replica answered: audit before data, across replicas and
// through a crash.
func TestReplicasShareOnePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN()
	if dsn == "" {
		t.Skipf("*** %s is not set: the replica test needs PostgreSQL and is SKIPPED ***", storetest.PostgresEnv)
	}
	bin, err := exec.LookPath("medsec")
	if err != nil {
		t.Fatalf("the test's medsec command: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx := &benchFixture{dir: t.TempDir(), pass: "replica test passphrase", dsn: storetest.WithSchema(dsn, storetest.NewSchema(t, dsn))}
	if err := fx.fill(ctx, 40); err != nil {
		t.Fatal(err)
	}
	a, err := startServe(ctx, bin, fx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startServe(ctx, bin, fx)
	if err != nil {
		a.kill()
		t.Fatal(err)
	}

	var answered, afterKill atomic.Int64
	var killed atomic.Bool
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		addr := []string{a.addr, b.addr}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			fx.readUntil(ctx, addr, w, stopLoad, func() {
				answered.Add(1)
				if killed.Load() && addr == b.addr {
					afterKill.Add(1)
				}
			})
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	a.kill()
	killed.Store(true)
	time.Sleep(1500 * time.Millisecond)
	close(stopLoad)
	wg.Wait()
	b.stop()

	if afterKill.Load() == 0 {
		t.Error("the surviving replica answered no read after the other was killed")
	}
	h, err := hospital.Open(context.Background(), fx.dir, hospital.OpenOptions{Passphrase: []byte(fx.pass)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	v, err := h.Verifier().Verify(context.Background())
	if err != nil || !v.OK {
		t.Fatalf("audit verify after two replicas and a kill -9: %v (%s)", err, v.Summary())
	}
	reads := 0
	err = audit.Scan(context.Background(), h.DB, h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		if e.Action == "observation.read" && e.Outcome == audit.Success {
			reads++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads answered (%d by the survivor after the kill), %d read events in a log of %d events that verifies", answered.Load(), afterKill.Load(), reads, v.Events)
	if int64(reads) < answered.Load() || answered.Load() == 0 {
		t.Errorf("%d successful read events for %d answered reads: an answered read has no audit event", reads, answered.Load())
	}
}

// readUntil reads observations from the server at addr until stop closes,
// calling ok for every read answered with 200. Errors (the killed
// replica's refused connections) are not answers and are not counted.
func (fx *benchFixture) readUntil(ctx context.Context, addr string, w int, stop <-chan struct{}, ok func()) {
	client := fx.client(1)
	for i := w; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/fhir/Observation/"+fx.ids[(i*7919)%len(fx.ids)], nil)
		req.Header.Set("Authorization", "Bearer "+fx.token)
		req.Header.Set("X-Purpose-Of-Use", "TREAT")
		res, err := client.Do(req)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		_, rerr := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK && rerr == nil {
			ok()
		}
	}
}
