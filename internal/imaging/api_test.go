package imaging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
	"github.com/medsec/medsec/internal/server"
)

// uploadMarker is the PatientName of the uploaded studies: found nowhere
// on disk after an upload, or the body was written out in plaintext.
const uploadMarker = "Zqxmarker^Uploadonly"

// apiFixture is the import API mounted on the real server, over real TLS,
// with a session token for each member of staff.
type apiFixture struct {
	*fixture
	ts     *httptest.Server
	tokens map[string]string // username → bearer token
	staff  map[string]string // username → staff id
}

const testUploadLimit = 1 << 20

// newAPIFixture serves the API with a 1 MiB upload limit; wrap, when set,
// wraps the server's handler (to watch the body being read).
func newAPIFixture(t *testing.T, wrap func(http.Handler) http.Handler) *apiFixture {
	t.Helper()
	f := &apiFixture{fixture: newFixture(t, guard.Config{}), tokens: map[string]string{}, staff: map[string]string{}}
	f.hire(t, identity.NewStaff{Username: "researcher.lee", DisplayName: "Researcher Lee", Role: identity.RoleResearcher, Department: "research"})
	for _, name := range []string{"dr.kim", "nurse.park", "researcher.lee"} {
		_, token, err := f.h.Staff.Login(context.Background(), identity.LoginRequest{Username: name, Password: f.password, Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		who, err := f.h.Staff.Sessions.Authenticate(context.Background(), token, "test")
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name], f.staff[name] = token, who.ID
	}
	srv, err := server.New(f.h, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	api := imaging.NewAPI(f.in, imaging.APIOptions{Sessions: f.h.Staff.Sessions, MaxBytes: testUploadLimit})
	srv.MountWithLimit("/imaging", api.MaxBytes(), api.Handler())
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	f.ts = httptest.NewTLSServer(h)
	t.Cleanup(f.ts.Close)
	return f
}

// answer is one response of the API.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) report(t *testing.T) *imaging.Report {
	t.Helper()
	var rep imaging.Report
	if err := json.Unmarshal(a.body, &rep); err != nil || rep.ID == "" {
		t.Fatalf("answer %d is not a report: %s (%v)", a.status, a.body, err)
	}
	return &rep
}

// post sends body to /imaging/import with the query, as who ("" for no
// Authorization header).
func (f *apiFixture) post(t *testing.T, who string, query url.Values, body io.Reader, size int64) answer {
	t.Helper()
	a, err := f.send(who, query, body, size)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// send is post for another goroutine than the test's.
func (f *apiFixture) send(who string, query url.Values, body io.Reader, size int64) (answer, error) {
	req, err := http.NewRequest(http.MethodPost, f.ts.URL+"/imaging/import?"+query.Encode(), body)
	if err != nil {
		return answer{}, err
	}
	req.ContentLength = size
	if who != "" {
		token, ok := f.tokens[who]
		if !ok {
			token = who // a made-up token
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (f *apiFixture) upload(t *testing.T, who, name string, data []byte) answer {
	t.Helper()
	return f.post(t, who, url.Values{"origin": {"CD from Busan clinic"}, "name": {name}}, bytes.NewReader(data), int64(len(data)))
}

// markedStudy is a study of the registered patient whose PatientName is
// uploadMarker.
func markedStudy(t *testing.T, seed uint64, series, instances int, preamble []byte) []dicomtest.Instance {
	t.Helper()
	ins, err := dicomtest.Generate(dicomtest.Options{Seed: seed, Patients: 1, SeriesPerStudy: series, InstancesPerSeries: instances,
		Preamble: preamble, Override: []dicomtest.Patient{{ID: testMRN, NameLatin: uploadMarker}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ins[0].Data, []byte(uploadMarker)) {
		t.Fatal("the generated file does not carry the marker")
	}
	return ins
}

func TestUploadCleanStudy(t *testing.T) {
	f := newAPIFixture(t, nil)
	clean := markedStudy(t, 51, 1, 1, nil)[0]
	a := f.upload(t, "nurse.park", "IM0001.dcm", clean.Data)
	if a.status != http.StatusOK {
		t.Fatalf("clean upload: %d %s, want 200", a.status, a.body)
	}
	rep := a.report(t)
	if rep.Media != imaging.MediaUpload || rep.Stored != 1 || len(rep.Files) != 1 || rep.Files[0].Path != "IM0001.dcm" || rep.Files[0].Outcome != imaging.Stored {
		t.Fatalf("report %s", a.body)
	}
	got, err := f.h.Door.ImagingStudy(context.Background(), f.treat(f.doctor), clean.StudyInstanceUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Data[128:], clean.Data[128:]) || got[0].Source != "upload import "+rep.ID {
		t.Fatalf("the door gives %d instances (source %q), want the file uploaded", len(got), got[0].Source)
	}
	checkUploadAudit(t, f, rep, f.staff["nurse.park"], identity.RoleNurse)
	checkNoPlaintext(t, f.h.Config.Path("."), uploadMarker)
}

// checkUploadAudit finds the import's event, naming the member of staff
// who uploaded.
func checkUploadAudit(t *testing.T, f *apiFixture, rep *imaging.Report, actor, role string) {
	t.Helper()
	found := false
	err := audit.Scan(context.Background(), f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		if e.Action == "imaging.import" && e.Resource == "Import/"+rep.ID {
			found = e.Actor == actor && e.Role == role && e.Outcome == audit.Success && strings.Contains(e.Reason, "upload media")
		}
		return nil
	})
	if err != nil || !found {
		t.Errorf("no import event by %s (%s) for %s: %v", actor, role, rep.ID, err)
	}
}

// checkNoPlaintext searches every file under dir for marker.
func checkNoPlaintext(t *testing.T, dir, marker string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s holds the uploaded file's PatientName in plaintext", p)
		}
		return nil
	})
	if err != nil || files < 3 {
		t.Fatalf("searched %d files of %s: %v", files, dir, err)
	}
}

func TestUploadPolyglotQuarantined(t *testing.T) {
	f := newAPIFixture(t, nil)
	poly := markedStudy(t, 52, 1, 1, peHeader())[0]
	a := f.upload(t, "dr.kim", "IM0002.dcm", poly.Data)
	if a.status != http.StatusUnprocessableEntity {
		t.Fatalf("polyglot upload: %d %s, want 422", a.status, a.body)
	}
	rep := a.report(t)
	if rep.Quarantined != 1 || rep.Stored != 0 || rep.Files[0].Quarantine == "" || !strings.Contains(rep.Files[0].Reason, "CVE-2019-11687") {
		t.Fatalf("report %s", a.body)
	}
	if !slices.ContainsFunc(rep.Files[0].Findings, func(fd guard.Finding) bool { return fd.Detector == guard.DetectDICOMPreamble }) {
		t.Errorf("the JSON lacks the preamble finding: %s", a.body)
	}
	items, err := f.in.Quarantined(context.Background(), f.officer, imaging.Filter{State: imaging.StateHeld})
	if err != nil || len(items) != 1 || !items[0].Kept || items[0].Origin != "CD from Busan clinic" {
		t.Fatalf("quarantine holds %+v (%v), want the polyglot kept with its origin", items, err)
	}
	checkUploadAudit(t, f, rep, f.staff["dr.kim"], identity.RolePhysician)
	checkNoPlaintext(t, f.h.Config.Path("."), uploadMarker)
}

func TestUploadZip(t *testing.T) {
	f := newAPIFixture(t, nil)
	clean := markedStudy(t, 53, 1, 2, nil)
	poly := markedStudy(t, 54, 1, 1, peHeader())[0]
	body := zipOf(t, map[string][]byte{"DICOM/IM1": clean[0].Data, "DICOM/IM2": clean[1].Data, "DICOM/POLY": poly.Data})
	a := f.upload(t, "nurse.park", "cd.zip", body)
	if a.status != http.StatusUnprocessableEntity {
		t.Fatalf("zip upload: %d %s, want 422", a.status, a.body)
	}
	rep := a.report(t)
	got := map[string]string{}
	for _, o := range rep.Files {
		got[o.Path] = o.Outcome
	}
	want := map[string]string{"cd.zip": imaging.Skipped, "cd.zip!/DICOM/IM1": imaging.Stored, "cd.zip!/DICOM/IM2": imaging.Stored, "cd.zip!/DICOM/POLY": imaging.Quarantined}
	if !equalMaps(got, want) || rep.Studies != 1 {
		t.Fatalf("outcomes %v (studies %d), want %v and one study", got, rep.Studies, want)
	}
	stored, err := f.h.Door.ImagingStudy(context.Background(), f.treat(f.doctor), clean[0].StudyInstanceUID)
	if err != nil || len(stored) != 2 {
		t.Fatalf("the door gives %d instances of the study (%v), want 2", len(stored), err)
	}
	checkNoPlaintext(t, f.h.Config.Path("."), uploadMarker)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestUploadTruncatedZip: a zip cut short (its central directory lost) is
// the file's outcome in the report, not a server error: it cannot be
// opened, so it is held sealed in quarantine as any unreadable archive of
// `medsec import` is.
func TestUploadTruncatedZip(t *testing.T) {
	f := newAPIFixture(t, nil)
	ins := markedStudy(t, 55, 1, 2, nil)
	whole := zipOf(t, map[string][]byte{"DICOM/IM1": ins[0].Data, "DICOM/IM2": ins[1].Data})
	a := f.upload(t, "nurse.park", "cd.zip", whole[:len(whole)/2])
	if a.status != http.StatusUnprocessableEntity {
		t.Fatalf("truncated zip: %d %s, want 422 with a report", a.status, a.body)
	}
	rep := a.report(t)
	if rep.Stored != 0 || rep.Quarantined != 1 || len(rep.Files) != 1 {
		t.Fatalf("report %s: want the zip alone, held", a.body)
	}
	o := rep.Files[0]
	if o.Path != "cd.zip" || o.Quarantine == "" || !strings.Contains(o.Reason, "zip archive cannot be read") {
		t.Errorf("file %+v: want the zip held, saying it cannot be read", o)
	}
	checkNoPlaintext(t, f.h.Config.Path("."), uploadMarker)
}

func TestUploadRefusals(t *testing.T) {
	f := newAPIFixture(t, nil)
	clean := markedStudy(t, 56, 1, 1, nil)[0].Data
	origin := url.Values{"origin": {"CD"}}
	cases := []struct {
		name, who string
		query     url.Values
		body      []byte
		status    int
		says      string
	}{
		{"no session", "", origin, clean, http.StatusUnauthorized, "Authorization: Bearer"},
		{"made-up token", "not-a-session", origin, clean, http.StatusUnauthorized, "sign in again"},
		{"researcher", "researcher.lee", origin, clean, http.StatusForbidden, "may not bring imaging media in"},
		{"no origin", "nurse.park", url.Values{"name": {"IM1.dcm"}}, clean, http.StatusBadRequest, "origin query parameter"},
		{"blank origin", "nurse.park", url.Values{"origin": {"  "}}, clean, http.StatusBadRequest, "origin query parameter"},
		{"no body", "nurse.park", origin, nil, http.StatusBadRequest, "request body"},
		{"no length", "nurse.park", origin, []byte("chunked"), http.StatusLengthRequired, "Content-Length"},
		{"too large", "nurse.park", origin, make([]byte, testUploadLimit+1), http.StatusRequestEntityTooLarge, "too large"},
	}
	for _, c := range cases {
		size := int64(len(c.body))
		if c.status == http.StatusLengthRequired {
			size = -1 // sent chunked
		}
		a := f.post(t, c.who, c.query, bytes.NewReader(c.body), size)
		if a.status != c.status || !strings.Contains(string(a.body), c.says) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, a.status, a.body, c.status, c.says)
		}
	}
	checkRefusalsAudited(t, f)
	if rep := f.upload(t, "nurse.park", "IM1.dcm", clean); rep.status != http.StatusOK {
		t.Errorf("after the refusals, the nurse's upload: %d %s", rep.status, rep.body)
	}
}

// checkRefusalsAudited finds the researcher's refusal and the two
// unauthenticated ones in the log, and no import.
func checkRefusalsAudited(t *testing.T, f *apiFixture) {
	t.Helper()
	var researcher, anonymous, imports int
	err := audit.Scan(context.Background(), f.h.DB, f.h.Config.Audit.Chain, 0, 0, func(e audit.Event) error {
		switch {
		case e.Action != "imaging.import":
		case e.Outcome == audit.Denied && e.Actor == f.staff["researcher.lee"] && e.Role == identity.RoleResearcher:
			researcher++
		case e.Outcome == audit.Denied && e.Actor == "anonymous":
			anonymous++
		default:
			imports++
		}
		return nil
	})
	if err != nil || researcher != 1 || anonymous != 2 || imports != 0 {
		t.Errorf("audited %d refusals of the researcher, %d unauthenticated, %d imports (%v); want 1, 2, 0", researcher, anonymous, imports, err)
	}
}

// TestUploadOneAtATime: while one upload is being read, a second is
// refused with 503 and Retry-After; the first then completes.
func TestUploadOneAtATime(t *testing.T) {
	reading := make(chan struct{})
	watch := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("name") == "first.dcm" {
				r.Body = &signalReader{ReadCloser: r.Body, first: reading}
			}
			next.ServeHTTP(w, r)
		})
	}
	f := newAPIFixture(t, watch)
	clean := markedStudy(t, 57, 1, 1, nil)[0].Data
	pr, pw := io.Pipe()
	first := make(chan answer, 1)
	go func() {
		a, err := f.send("nurse.park", url.Values{"origin": {"CD"}, "name": {"first.dcm"}}, pr, int64(len(clean)))
		if err != nil {
			a.body = []byte(err.Error())
			pr.CloseWithError(err)
		}
		first <- a
	}()
	pw.Write(clean[:100]) // the rest waits until the second upload is refused
	select {
	case <-reading: // the first holds the intake: it reads its body
	case a := <-first:
		t.Fatalf("the first upload ended before its body was sent: %d %s", a.status, a.body)
	}
	second := f.upload(t, "dr.kim", "second.dcm", clean)
	if second.status != http.StatusServiceUnavailable || second.header.Get("Retry-After") == "" {
		t.Errorf("second upload: %d (Retry-After %q) %s, want 503 with Retry-After", second.status, second.header.Get("Retry-After"), second.body)
	}
	pw.Write(clean[100:])
	pw.Close()
	if a := <-first; a.status != http.StatusOK || a.report(t).Stored != 1 {
		t.Errorf("first upload: %d %s, want it stored", a.status, a.body)
	}
	if a := f.upload(t, "dr.kim", "second.dcm", clean); a.status != http.StatusOK || a.report(t).Duplicates != 1 {
		t.Errorf("the second, sent again after the first: %d %s, want 200 (already stored)", a.status, a.body)
	}
}

// signalReader closes first when the handler first reads the body.
type signalReader struct {
	io.ReadCloser
	first chan struct{}
	once  bool
}

func (r *signalReader) Read(p []byte) (int, error) {
	if !r.once {
		r.once = true
		close(r.first)
	}
	return r.ReadCloser.Read(p)
}
