package showcase

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/demo"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/posture"
)

// TestPrepare prepares the real demo hospital as medsec demo --serve does
// and checks what the tour promises is there.
func TestPrepare(t *testing.T) {
	ctx := context.Background()
	pass := []byte("showcase test passphrase")
	rep, err := demo.Run(ctx, demo.Options{Dir: filepath.Join(t.TempDir(), "demo"), Passphrase: pass, Patients: 4,
		KDF: &keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, rep.Dir, hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	// The demo itself leaves an honest, green posture: every privileged
	// account with a confirmed second factor, the audit log verified.
	report, err := posture.Check(ctx, h, posture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range report.Controls {
		if c.State == posture.Fail {
			t.Errorf("the demo's posture: %s fails: %s", c.ID, c.Reason)
		}
	}
	con, err := console.New(ctx, h, console.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var staff []Account
	var patients []string
	for _, s := range rep.Staff {
		staff = append(staff, Account{Username: s.Username, Role: s.Role, Password: s.Password})
	}
	for _, p := range rep.Patients {
		patients = append(patients, p.ID)
	}
	before, _ := h.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindBreakGlass})
	tour, err := Prepare(ctx, h, con, staff, patients)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := con.PatientLogin(ctx, tour.PortalUser, tour.PortalPassword, "test"); err != nil {
		t.Errorf("the tour's portal account does not sign in: %v", err)
	}
	after, _ := h.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindBreakGlass})
	if len(after) != len(before)+1 {
		t.Errorf("break-glass alerts %d → %d, want one more to review", len(before), len(after))
	}
	if rec := serve(con, "/display/"+tour.Department, nil); rec.Code != http.StatusNotFound {
		t.Errorf("the display without the enrolled screen's token: %d, want 404", rec.Code)
	}
	enrolled := serve(con, tour.DisplayPath, nil)
	cookies := enrolled.Result().Cookies()
	if enrolled.Code != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("opening the tour's screen %s: %d with %d cookies", tour.DisplayPath, enrolled.Code, len(cookies))
	}
	rec := serve(con, "/display/"+tour.Department, cookies[0])
	screen := rec.Body.String()
	if !strings.Contains(screen, "Room 3") || strings.Count(screen, `class="number"`) < 2 {
		t.Errorf("the waiting-room display lacks the called and waiting tickets")
	}
	for _, p := range rep.Patients {
		if strings.Contains(screen, p.Name) {
			t.Errorf("the display shows the name %q", p.Name)
		}
	}
	if v, err := posture.LastVerification(ctx, h.DB); err != nil || !v.OK {
		t.Errorf("the audit log was not verified: %+v, %v", v, err)
	}
	if _, err := Prepare(ctx, h, con, staff[:1], patients); err == nil {
		t.Errorf("Prepare without the desk and ward accounts succeeded")
	}
}

func serve(con *console.Console, path string, cookie *http.Cookie) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	con.ServeHTTP(rec, req)
	return rec
}
