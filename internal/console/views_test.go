package console

import (
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCatalogs checks that both languages have the same messages, that
// every message a template names exists, and that format verbs agree.
func TestCatalogs(t *testing.T) {
	en, err := loadCatalog("en")
	if err != nil {
		t.Fatal(err)
	}
	ko, err := loadCatalog("ko")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(catalogKeys(en), catalogKeys(ko)); diff != "" {
		t.Errorf("catalog keys differ (-en +ko):\n%s", diff)
	}
	verbs := regexp.MustCompile(`%[dsv]`)
	for k, msg := range en {
		if got, want := verbs.FindAllString(ko[k], -1), verbs.FindAllString(msg, -1); !slices.Equal(got, want) {
			t.Errorf("%s: Korean verbs %v, English %v", k, got, want)
		}
	}
	literal := regexp.MustCompile(`\bt "([a-z0-9_.\-]+)"`)
	files, _ := fs.Glob(templateFS, "templates/*.html")
	for _, f := range files {
		src, _ := templateFS.ReadFile(f)
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			if _, ok := en[m[1]]; !ok {
				t.Errorf("%s uses message %q, which the catalog lacks", f, m[1])
			}
		}
	}
	for _, prefix := range []string{"role.", "nav.", "control.", "kind.", "purpose.", "state.", "loc.", "stage."} {
		if !slices.ContainsFunc(catalogKeys(en), func(k string) bool { return strings.HasPrefix(k, prefix) }) {
			t.Errorf("no message starts with %s", prefix)
		}
	}
}

func catalogKeys(c catalog) []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestLanguage(t *testing.T) {
	tests := []struct {
		accept, cookie, want string
	}{
		{"ko-KR,ko;q=0.9,en;q=0.8", "", "ko"},
		{"en-US,en;q=0.9", "", "en"},
		{"fr-FR", "", "en"},
		{"", "", "en"},
		{"en", "ko", "ko"},
		{"ko", "xx", "ko"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", tt.accept)
		if tt.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: tt.cookie})
		}
		if got := languageOf(r); got != tt.want {
			t.Errorf("Accept-Language %q, cookie %q: %s, want %s", tt.accept, tt.cookie, got, tt.want)
		}
	}
}

func TestKoreanPagesAndSwitch(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/console/login", nil)
	req.Header.Set("Accept-Language", "ko-KR")
	if r := c.do(req); !strings.Contains(r.body, "직원 로그인") || !strings.Contains(r.body, `lang="ko"`) {
		t.Errorf("Korean browser does not get the Korean sign-in page")
	}
	r := c.get("/lang?to=ko&back=/console/login")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login" {
		t.Fatalf("switch: %d %q", r.status, r.header.Get("Location"))
	}
	if r := c.get("/console/login"); !strings.Contains(r.body, "직원 로그인") {
		t.Errorf("after switching to Korean an English browser still gets English")
	}
	c.openScreen(f.enrolScreen(t, "internal_medicine"))
	if screen := c.get("/display/internal_medicine"); !strings.Contains(screen.body, "호출 안내") {
		t.Errorf("the display does not follow the language")
	}
	if r := c.get("/lang?to=en&back=//evil.example/"); r.header.Get("Location") != "/" {
		t.Errorf("language switch redirects off site to %q", r.header.Get("Location"))
	}
}

// TestSecurityHeaders checks what every console page carries on the real
// server: a CSP without inline script, HSTS, no framing, no caching.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "officer.han")
	c.openScreen(f.enrolScreen(t, "internal_medicine"))
	for _, path := range []string{"/console/", "/console/login", "/portal/login", "/display/internal_medicine"} {
		r := c.get(path)
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		for h, want := range map[string]string{"Strict-Transport-Security": "max-age=", "X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if !strings.Contains(r.header.Get(h), want) {
				t.Errorf("%s: %s = %q", path, h, r.header.Get(h))
			}
		}
		if strings.Contains(r.body, "<script") || strings.Contains(r.body, " style=\"") || strings.Contains(r.body, " on") && regexp.MustCompile(` on[a-z]+="`).MatchString(r.body) {
			t.Errorf("%s has inline script or style", path)
		}
	}
}

func TestKoreanOverview(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, "officer.han")
	c.get("/lang?to=ko&back=/console/")
	r := c.get("/console/")
	for _, want := range []string{"의료 정보가 이동하는 곳", "정보 암호화", "감사 통제", "개인정보 보호", "처리 대기 경보"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("Korean overview lacks %q", want)
		}
	}
	for _, english := range []string{"Information encryption", "Audit controls", "Open alerts"} {
		if strings.Contains(r.body, english) {
			t.Errorf("Korean overview shows %q in English", english)
		}
	}
}

// TestLanguageSwitchStaysOnSite: the switch's "back" goes only to a path
// of this site; whatever a browser could read as another host goes to /.
func TestLanguageSwitchStaysOnSite(t *testing.T) {
	for _, tc := range []struct{ back, want string }{
		{"/console/audit", "/console/audit"},
		{"/portal/consents", "/portal/consents"},
		{"/console/audit?user=dr.kim", "/console/audit?user=dr.kim"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r\n/evil.example", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"", "/"},
		{"/ /evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\u3000/evil.example", "/"},
		{"/%09/evil.example", "/%09/evil.example"}, // stays a path here: %09 is not decoded again
	} {
		if got := localPath(tc.back); got != tc.want {
			t.Errorf("localPath(%q) = %q, want %q", tc.back, got, tc.want)
		}
	}
	f := newFixture(t)
	c := f.client(t)
	for _, back := range []string{"/%09/evil.example", "/%0a/evil.example", "%2F%2Fevil.example", "/%5Cevil.example"} {
		if r := c.get("/lang?to=en&back=" + back); r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
			t.Errorf("/lang?back=%s: %d to %q, want / ", back, r.status, r.header.Get("Location"))
		}
	}
}
