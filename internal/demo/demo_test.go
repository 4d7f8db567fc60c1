package demo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
)

var fastKDF = &keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

// TestDemo runs the whole demo and checks what it reports, then searches
// every file it left — database, WAL, shared memory, keys, checkpoints — for
// the synthetic patients' identifying values.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h")
	rep, err := Run(context.Background(), Options{Dir: dir, Passphrase: []byte("demo test passphrase"), KDF: fastKDF, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Patients) != 6 || rep.Records.Stored != 24 || rep.Records.Read != 18 {
		t.Errorf("got %d patients, %d stored, %d read; want 6, 24, 18", len(rep.Patients), rep.Records.Stored, rep.Records.Read)
	}
	if !rep.Audit.Verified || rep.Audit.Events < 40 {
		t.Errorf("audit %+v, want verified with the demo's events", rep.Audit)
	}
	d := rep.Destruction
	if !d.AuditVerifiedAfter || !d.RecordsUnreadable || !strings.Contains(d.ReadError, "destroyed on") {
		t.Errorf("destruction %+v, want unreadable data and a verifying log", d)
	}
	if rep.Plaintext.Hits != 0 || rep.Plaintext.FilesScanned < 5 {
		t.Errorf("the demo's own plaintext search: %+v", rep.Plaintext)
	}
	n, hits, err := ScanPlaintext(dir, Needles(rep.Patients))
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 {
		t.Errorf("plaintext PHI in the data directory: %v", hits)
	}
	if n < 5 {
		t.Errorf("only %d files searched", n)
	}
	signInEveryAccount(t, dir, rep)
	// The needles are real: the search finds a name written in plaintext.
	os.WriteFile(filepath.Join(dir, "leak.txt"), []byte("patient "+rep.Patients[0].Name), 0o600)
	if _, hits, _ := ScanPlaintext(dir, Needles(rep.Patients)); len(hits) != 1 {
		t.Errorf("the search missed a planted name: %v", hits)
	}
}

func TestDemoJSONShape(t *testing.T) {
	rep, err := Run(context.Background(), Options{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rep)
	var got struct {
		Patients []struct{ ID, Name, RRN, Phone string } `json:"patients"`
		Audit    struct {
			Events   int  `json:"events"`
			Verified bool `json:"verified"`
		} `json:"audit"`
		Dir string `json:"data_dir"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Patients) == 0 || got.Patients[0].RRN == "" || got.Patients[0].Phone == "" || !got.Audit.Verified {
		t.Errorf("JSON lacks the patients' values or the audit figures: %s", raw)
	}
	if got.Dir != "" {
		t.Errorf("a temporary demo directory was reported as kept: %s", got.Dir)
	}
}

// signInEveryAccount: every demo account the report lists can sign in to
// the kept installation with what the report gives (a newcomer uses them
// with demo --serve).
func signInEveryAccount(t *testing.T, dir string, rep *Report) {
	t.Helper()
	h, err := hospital.Open(context.Background(), dir, hospital.OpenOptions{Passphrase: []byte("demo test passphrase")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	for _, st := range rep.Staff {
		code := ""
		if st.TOTPSecret != "" {
			code, _ = totp.GenerateCode(st.TOTPSecret, time.Now())
		}
		_, _, err := h.Staff.Login(context.Background(), identity.LoginRequest{Username: st.Username, Password: st.Password, TOTP: code, Source: "test"})
		// the demo itself may have used this time step's code: a code
		// refused as already used still proves the secret is the account's
		if err != nil && !strings.Contains(err.Error(), "already used") {
			t.Errorf("demo account %s (%s) cannot sign in with what the report gives: %v", st.Username, st.Role, err)
		}
	}
}
