package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/postgres"
	"github.com/medsec/medsec/internal/store/sqlite"
	"github.com/medsec/medsec/internal/store/storetest"
)

// The crash child appends events from many goroutines and prints the index
// of each one as soon as Append acknowledges it, until it is killed.
const crashEnv = "MEDSEC_AUDIT_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

func crashChild() {
	ctx := context.Background()
	db, err := openCrashDB(ctx, os.Getenv(crashEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	seed, _ := hex.DecodeString(os.Getenv("CRASH_SEED"))
	mac, _ := hex.DecodeString(os.Getenv("CRASH_MAC"))
	signer, _ := NewSigner("medsec-audit-crash", seed)
	log, err := Open(ctx, db, Config{Signer: signer, MACKey: mac, CheckpointFile: os.Getenv("CRASH_CP"), Every: 300, Interval: 50 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				ev := testEvent(i)
				ev.Actor = fmt.Sprintf("w%d-%d", w, i)
				idx, err := log.Append(ctx, ev)
				if err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %s\n", idx, ev.Actor)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

func openCrashDB(ctx context.Context, target string) (*store.DB, error) {
	if strings.HasPrefix(target, "postgres") {
		return postgres.Open(ctx, target)
	}
	return sqlite.Open(ctx, target, true)
}

// TestCrashDuringAppend kills a process with SIGKILL while it appends audit
// events; afterwards the log verifies and every acknowledged event is there.
func TestCrashDuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process")
	}
	targets := map[string]string{"sqlite": filepath.Join(t.TempDir(), "crash.db")}
	if dsn := storetest.PostgresDSN(); dsn != "" {
		targets["postgres"] = storetest.WithSchema(dsn, storetest.NewSchema(t, dsn))
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) { crashOnce(t, target) })
	}
}

func crashOnce(t *testing.T, target string) {
	ctx := context.Background()
	seed, mac := key(), key()
	cp := filepath.Join(t.TempDir(), "checkpoints")
	db, err := openCrashDB(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, Migrations); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+target, "CRASH_SEED="+hex.EncodeToString(seed), "CRASH_MAC="+hex.EncodeToString(mac), "CRASH_CP="+cp)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 3000 {
		f := strings.Fields(sc.Text())
		idx, _ := strconv.ParseUint(f[0], 10, 64)
		acked[idx] = f[1]
	}
	cmd.Process.Kill() // SIGKILL, mid-append
	for sc.Scan() {    // acknowledgements already written before the kill count too
		f := strings.Fields(sc.Text())
		idx, _ := strconv.ParseUint(f[0], 10, 64)
		acked[idx] = f[1]
	}
	cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("the child acknowledged only %d events before it died", len(acked))
	}
	signer, _ := NewSigner("medsec-audit-crash", seed)
	vkey, _ := signer.VerifierKey()
	nv, _ := note.NewVerifier(vkey)
	vf := &Verifier{DB: db, Chain: "main", NoteVerifier: nv, MACKey: mac, CheckpointFile: cp}
	v, err := vf.Verify(ctx)
	if err != nil || !v.OK {
		t.Fatalf("verify after kill -9: %v (%+v)", err, v)
	}
	stored := map[uint64]string{}
	Scan(ctx, db, "main", 0, 0, func(e Event) error { stored[e.Index] = e.Actor; return nil })
	for idx, actor := range acked {
		if stored[idx] != actor {
			t.Errorf("acknowledged event %d (%s) is missing or different after the crash: %q", idx, actor, stored[idx])
		}
	}
	t.Logf("%d events acknowledged before SIGKILL, %d stored, verified with %d checkpoints", len(acked), v.Events, v.Checkpoints)
	// The log accepts appends again after the crash.
	log, err := Open(ctx, db, Config{Signer: signer, MACKey: mac, CheckpointFile: cp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(ctx, testEvent(1)); err != nil {
		t.Fatal(err)
	}
	log.Close(ctx)
	if v, err := vf.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("verify after restart: %v", err)
	}
}

func key() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}
