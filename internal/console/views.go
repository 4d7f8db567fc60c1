package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/text/language"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed catalog/*.json
var catalogFS embed.FS

//go:embed assets
var assetFS embed.FS

// Languages the console speaks; the first is the fallback.
var languages = []language.Tag{language.English, language.Korean}

var languageMatcher = language.NewMatcher(languages)

// catalog is one language's messages by key.
type catalog map[string]string

// views are the parsed templates per language and page.
type views struct {
	pages    map[string]map[string]*template.Template // lang → page → template
	catalogs map[string]catalog
}

// layouts: pages of the staff console and the portal share "layout";
// the waiting-room display stands alone.
const layoutFile = "templates/layout.html"

func loadViews() (*views, error) {
	v := &views{pages: map[string]map[string]*template.Template{}, catalogs: map[string]catalog{}}
	for _, tag := range languages {
		lang := tag.String()
		cat, err := loadCatalog(lang)
		if err != nil {
			return nil, err
		}
		v.catalogs[lang] = cat
		if v.pages[lang], err = parsePages(cat); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func loadCatalog(lang string) (catalog, error) {
	raw, err := catalogFS.ReadFile("catalog/" + lang + ".json")
	if err != nil {
		return nil, err
	}
	var cat catalog
	if err := json.Unmarshal(raw, &cat); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", lang, err)
	}
	return cat, nil
}

func parsePages(cat catalog) (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, f := range files {
		if f == layoutFile {
			continue
		}
		name := strings.TrimSuffix(path.Base(f), ".html")
		t, err := template.New(name).Funcs(funcs(cat)).ParseFS(templateFS, layoutFile, f)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// funcs are the template functions; t translates with the page's catalog.
func funcs(cat catalog) template.FuncMap {
	return template.FuncMap{
		"t":     cat.text,
		"tor":   cat.textOr,
		"when":  formatTime,
		"day":   func(t time.Time) string { return dayOf(t) },
		"join":  strings.Join,
		"state": stateClass,
		"add":   func(a, b int) int { return a + b },
		"f":     f,
		"roles": rolesFor,
	}
}

// text returns the message of key, formatted with args; a missing key
// shows itself, so a gap in a catalog is visible rather than blank.
func (c catalog) text(key string, args ...any) string {
	msg, ok := c[key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// textOr translates key, or shows fallback when the catalog has no such
// message (names that come from other packages in English).
func (c catalog) textOr(key, fallback string) string {
	if msg, ok := c[key]; ok {
		return msg
	}
	return fallback
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func dayOf(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format(time.DateOnly)
}

// stateClass turns a state into a CSS class.
func stateClass(s any) string {
	switch fmt.Sprint(s) {
	case "pass", "true", "active", "ok", "success", "closed", "called":
		return "st-pass"
	case "fail", "false", "overdue", "critical", "denied", "error", "revoked", "lost":
		return "st-fail"
	case "warning", "warn", "suspended", "pending", "waiting", "open":
		return "st-warn"
	}
	return "st-off"
}

// execute renders a page of lang into a buffer, so a template error never
// sends half a page.
func (v *views) execute(lang, name string, data any) ([]byte, error) {
	t, ok := v.pages[lang][name]
	if !ok {
		return nil, fmt.Errorf("no page %q", name)
	}
	var b bytes.Buffer
	entry := "layout"
	if t.Lookup("standalone") != nil {
		entry = "standalone"
	}
	if err := t.ExecuteTemplate(&b, entry, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// langCookie keeps the language a person chose with the switch.
const langCookie = "medsec-lang"

// languageOf picks the page language: the switch's cookie, else the
// browser's Accept-Language.
func languageOf(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == "en" || c.Value == "ko") {
		return c.Value
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := languageMatcher.Match(tags...)
	return languages[i].String()
}
