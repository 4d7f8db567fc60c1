package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/console"
	"github.com/medsec/medsec/internal/console/sections"
	"github.com/medsec/medsec/internal/console/showcase"
	"github.com/medsec/medsec/internal/demo"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/server"
)

// site is the demo hospital served as medsec demo --serve serves it.
type site struct {
	h    *hospital.Hospital
	rep  *demo.Report
	tour showcase.Tour
	url  string
	// skew moves the staff directory's clock ahead, so the officer's
	// one-time code is from a step the demo run did not use.
	skew time.Duration
}

func newSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	pass := []byte("browser test passphrase")
	rep, err := demo.Run(ctx, demo.Options{Dir: filepath.Join(t.TempDir(), "demo"), Passphrase: pass, Patients: 5,
		KDF: &keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hospital.Open(ctx, rep.Dir, hospital.OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	s := &site{h: h, rep: rep, skew: 5 * time.Minute}
	h.Staff.Now = func() time.Time { return time.Now().Add(s.skew) }
	con := s.console(t)
	var accounts []showcase.Account
	var patients []string
	for _, a := range rep.Staff {
		accounts = append(accounts, showcase.Account{Username: a.Username, Role: a.Role, Password: a.Password})
	}
	for _, p := range rep.Patients {
		patients = append(patients, p.ID)
	}
	if s.tour, err = showcase.Prepare(ctx, h, con, accounts, patients); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(h, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount("/", con)
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.StartTLS()
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

// console assembles the console with its sections as medsec serve does.
func (s *site) console(t *testing.T) *console.Console {
	t.Helper()
	ctx := context.Background()
	schedule, err := lifecycle.LoadSchedule(s.h.Config.Dir(), s.h.Config.Jurisdiction)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := lifecycle.New(ctx, lifecycle.Config{DB: s.h.DB, Door: s.h.Door, Audit: s.h.Audit, Keys: s.h.Keys,
		HospitalID: s.h.Config.Hospital.ID, Schedule: schedule, Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provision.New(provision.Config{DB: s.h.DB, Door: s.h.Door, Audit: s.h.Audit, Signer: engine.Signer(), Alerts: s.h.Alerts, Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// medsec serve runs retention when it starts.
	if _, err := engine.Run(ctx, lifecycle.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	con, err := console.New(ctx, s.h, console.Options{Sections: sections.New(s.h, engine, prov, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return con
}

// officerCode is the security officer's one-time code at the directory's
// clock (each code signs in once).
func (s *site) officerCode(t *testing.T) string {
	t.Helper()
	for _, a := range s.rep.Staff {
		if a.Username == "officer.han" {
			code, err := totp.GenerateCode(a.TOTPSecret, s.h.Staff.Now())
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
	}
	t.Fatal("the demo has no officer.han")
	return ""
}

func (s *site) password(user string) string {
	for _, a := range s.rep.Staff {
		if a.Username == user {
			return a.Password
		}
	}
	return ""
}

// browser starts Debian's chromium headless with a fresh profile, or skips
// loudly when it is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("\n\n*** SKIPPING THE CONSOLE'S BROWSER TESTS: chromium is not installed (apt-get install -y chromium). ***\n*** The console was NOT tested in a browser. ***\n")
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900)}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// outDir is where screenshots go: $MEDSEC_TEST_OUT, else a test directory.
func outDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MEDSEC_TEST_OUT"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signIn(t *testing.T, ctx context.Context, s *site, user, code string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(s.url+"/console/login"),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), s.password(user)),
		chromedp.SendKeys(chromedp.CSS(`input[name=code]`), code),
		chromedp.Click(chromedp.CSS(`form[action="/console/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.flowmap, p.flash.fail, section.problem`)))
	if got := text(t, ctx, "main"); !strings.Contains(got, "Where medical information moves") {
		t.Fatalf("sign-in of %s did not reach the overview:\n%s", user, got)
	}
}

func TestConsoleInBrowser(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	out := outDir(t)
	readme := os.Getenv("MEDSEC_README_SCREENSHOTS") != ""

	signIn(t, ctx, s, "officer.han", s.officerCode(t))
	overview := text(t, ctx, "main")
	for _, want := range []string{"Where medical information moves", s.rep.Hospital, "Emergency access (break-glass)", "Audit log", "audit log intact"} {
		if !strings.Contains(overview+text(t, ctx, "header"), want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	screenshot(t, ctx, out, "console-overview.png")
	if readme {
		writeReadme(t, ctx, "console-overview.png")
	}
	do(t, ctx, chromedp.Navigate(s.url+"/console/alerts"), chromedp.WaitVisible(chromedp.CSS(`article.alert`)))
	screenshot(t, ctx, out, "console-alerts.png")
	if readme {
		writeReadme(t, ctx, "console-alerts.png")
	}

	// Acknowledge the break-glass alert with a note.
	do(t, ctx, chromedp.Navigate(s.url+"/console/alerts?kind=break-glass"), chromedp.WaitVisible(chromedp.CSS(`article.alert`)))
	before := openAlerts(t, s, alerts.KindBreakGlass)
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(`article.alert textarea[name=note]`), "Reviewed with the ward: a real emergency in the corridor."),
		chromedp.Click(chromedp.CSS(`article.alert form.ack button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash.ok`)))
	if got := openAlerts(t, s, alerts.KindBreakGlass); got != before-1 {
		t.Errorf("open break-glass alerts %d after acknowledging one of %d", got, before)
	}

	// Search the audit log for Dr. Kim's accesses.
	do(t, ctx, chromedp.Navigate(s.url+"/console/audit"),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "dr.kim"),
		chromedp.Click(chromedp.CSS(`form.search button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.events tbody tr`)))
	if rows, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`table.events tbody tr`))); err != nil || len(rows) == 0 {
		t.Errorf("audit search for dr.kim found %d rows (%v)", len(rows), err)
	}
	if got := text(t, ctx, "table.events"); !strings.Contains(got, "dr.kim") {
		t.Errorf("audit results do not name dr.kim")
	}
	screenshot(t, ctx, out, "console-audit.png")

	// The sections other capabilities fill: the demo's packages, its
	// retention run with a certificate, its devices and gateway.
	for _, sec := range []struct{ path, want string }{
		{"/console/ledger", "pharmacy-seoul"}, {"/console/retention", "download"}, {"/console/devices", "gateway"}} {
		do(t, ctx, chromedp.Navigate(s.url+sec.path), chromedp.WaitVisible(chromedp.CSS(`main table`)))
		if got := text(t, ctx, "main"); !strings.Contains(got, sec.want) {
			t.Errorf("%s lacks %q", sec.path, sec.want)
		}
	}
	screenshot(t, ctx, out, "console-ledger.png")
	do(t, ctx, chromedp.Navigate(s.url+"/console/displays"), chromedp.WaitVisible(chromedp.CSS(`main table`)))
	if got := text(t, ctx, "main"); !strings.Contains(got, s.tour.Department) || strings.Contains(got, "screen=") {
		t.Errorf("the screens page lacks the demo's screen or shows its token again")
	}
	screenshot(t, ctx, out, "console-displays.png")

	// A page on another site tries to acknowledge an alert in the
	// officer's name: the console refuses it.
	csrfAttempt(t, ctx, s)

	do(t, ctx, chromedp.Navigate(s.url+"/console/"), chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/console/login"]`)))
	patientWithdraws(t, ctx, s, out)
	waitingRoom(t, ctx, s, out)
}

func openAlerts(t *testing.T, s *site, kind string) int {
	t.Helper()
	as, err := s.h.Alerts.List(context.Background(), alerts.Filter{OpenOnly: true, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return len(as)
}

// csrfAttempt serves a page from another origin whose script posts the
// acknowledgement form to the console while the officer is signed in.
func csrfAttempt(t *testing.T, ctx context.Context, s *site) {
	t.Helper()
	as, err := s.h.Alerts.List(context.Background(), alerts.Filter{OpenOnly: true})
	if err != nil || len(as) == 0 {
		t.Fatalf("no open alert to forge an acknowledgement of (%v)", err)
	}
	target := fmt.Sprintf("%s/console/alerts/%s/ack", s.url, as[0].ID)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body><form id="f" method="post" action="%s"><input name="note" value="forged"><input name="csrf" value="guess"></form>
<script>document.getElementById("f").submit()</script></body></html>`, target)
	}))
	defer evil.Close()
	do(t, ctx, chromedp.Navigate(evil.URL))
	arrived(t, ctx, s.url)
	left, err := s.h.Alerts.List(context.Background(), alerts.Filter{OpenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range left {
		if a.ID == as[0].ID {
			return
		}
	}
	t.Errorf("a cross-site form acknowledged alert %s", as[0].ID)
}

// arrived waits until the browser shows a page of the console: the forged
// form was posted and answered, so the check after it is not vacuous.
func arrived(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	for range 300 {
		if where, err := chromedp.Run(ctx, chromedp.Location()); err == nil && strings.HasPrefix(where, base) {
			do(t, ctx, chromedp.WaitReady(chromedp.CSS("body")))
			return
		}
		do(t, ctx, chromedp.Sleep(50*time.Millisecond))
	}
	t.Fatal("the forged form never reached the console: the CSRF check would prove nothing")
}

// patientWithdraws signs in to the portal as the demo patient and
// withdraws a consent.
func patientWithdraws(t *testing.T, ctx context.Context, s *site, out string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(s.url+"/portal/login"),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), s.tour.PortalUser),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), s.tour.PortalPassword),
		chromedp.Click(chromedp.CSS(`form[action="/portal/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav`)))
	screenshot(t, ctx, out, "portal-records.png")
	do(t, ctx, chromedp.Navigate(s.url+"/portal/access"), chromedp.WaitVisible(chromedp.CSS(`table.events`)))
	screenshot(t, ctx, out, "portal-access.png")
	do(t, ctx, chromedp.Navigate(s.url+"/portal/consents"), chromedp.WaitVisible(chromedp.CSS(`form[action$="/withdraw"]`)))
	screenshot(t, ctx, out, "portal-consents.png")
	do(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/withdraw"] button`)), chromedp.WaitVisible(chromedp.CSS(`p.flash.ok`)))
	id, err := s.h.Door.ResolvePseudonym(context.Background(), s.tour.Patient)
	if err != nil {
		t.Fatal(err)
	}
	desk, err := s.h.Staff.Authenticate(context.Background(), "reception", s.password("reception"), "test")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := s.h.Door.Consents(context.Background(), records.Request{Who: desk, Purpose: "HOPERAT"}, id)
	if err != nil {
		t.Fatal(err)
	}
	withdrawn := 0
	for _, c := range cs {
		if !c.WithdrawnAt.IsZero() {
			withdrawn++
		}
	}
	if withdrawn != 1 {
		t.Errorf("%d of the patient's consents are withdrawn, want 1", withdrawn)
	}
}

// waitingRoom opens the display and checks it shows masked names only.
func waitingRoom(t *testing.T, ctx context.Context, s *site, out string) {
	t.Helper()
	// A screen that is not enrolled shows nothing of the queue.
	do(t, ctx, chromedp.Navigate(s.url+"/display/"+s.tour.Department), chromedp.WaitVisible(chromedp.CSS(`section.problem`)))
	// The enrolled screen opens its address once and keeps showing the
	// queue at the clean address, reloading itself.
	do(t, ctx, chromedp.Navigate(s.url+s.tour.DisplayPath), chromedp.WaitVisible(chromedp.CSS(`.call`)))
	if where, err := chromedp.Run(ctx, chromedp.Location()); err != nil || strings.Contains(where, "screen=") {
		t.Errorf("the screen's address after enrolment: %q (%v), want it without the token", where, err)
	}
	do(t, ctx, chromedp.Navigate(s.url+"/display/"+s.tour.Department), chromedp.WaitVisible(chromedp.CSS(`.call`)))
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "*") {
		t.Errorf("the display shows no masked name")
	}
	for _, p := range s.rep.Patients {
		for _, v := range []string{p.Name, p.RRN, p.Phone} {
			if strings.Contains(html, v) {
				t.Errorf("the waiting-room display shows %q", v)
			}
		}
	}
	screenshot(t, ctx, out, "display.png")
}

// writeReadme refreshes a screenshot of the README: what a laptop's
// window shows of the page.
func writeReadme(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "..", "docs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
