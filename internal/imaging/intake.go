package imaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/imaging/dicomhdr"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// DefaultMaxFileBytes is the largest file an import stores or keeps in
// quarantine: each is held in memory while it is sealed.
const DefaultMaxFileBytes = 256 << 20

// DetectIntake names the intake's own findings (no patient for the file,
// attributes missing, a conflicting instance): not malicious, but the file
// cannot go in without a person looking at it.
const DetectIntake guard.Detector = "intake"

// importer is the principal of the import job; the shipped policy lets it
// write imaging for treatment ("system-imaging-import").
var (
	importer      = identity.System("import")
	importRequest = records.Request{Who: importer, Purpose: "TREAT"}
)

// Config assembles an Intake from an open installation's parts.
type Config struct {
	DB     *store.DB
	Keys   *keys.Keyring
	Audit  *audit.Log
	Door   *records.Door
	Alerts *alerts.Inbox
	// Scan configures the scanner (deny list, ClamAV, limits, progress);
	// its Inspect is the intake's own and is overwritten.
	Scan guard.Config
	// MaxFileBytes is the largest file stored or kept in quarantine;
	// DefaultMaxFileBytes when 0.
	MaxFileBytes int64
	Now          func() time.Time
}

// Intake imports media into the imaging store and keeps the quarantine.
// It is safe for concurrent use.
type Intake struct {
	cfg Config
}

// New returns an intake. It prepares its tables (Migrations; a no-op once
// applied) and re-seals, each under a key of its own, what an earlier
// version sealed with one shared key.
func New(ctx context.Context, cfg Config) (*Intake, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Audit == nil || cfg.Door == nil || cfg.Alerts == nil {
		return nil, errors.New("imaging: the intake needs a database, keys, the audit log, the door and the alert inbox")
	}
	if err := cfg.DB.Migrate(ctx, Migrations); err != nil {
		return nil, fmt.Errorf("prepare imaging tables: %w", err)
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = DefaultMaxFileBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	in := &Intake{cfg: cfg}
	if err := in.upgrade(ctx); err != nil {
		return nil, fmt.Errorf("upgrade the quarantine: %w", err)
	}
	return in, nil
}

func (in *Intake) now() time.Time { return in.cfg.Now() }

// Outcomes of one file of an import.
const (
	Stored      = "stored"      // in the imaging store, through the door
	Duplicate   = "duplicate"   // already stored; nothing new written
	Quarantined = "quarantined" // kept out, sealed, waiting for the officer
	Skipped     = "skipped"     // clean but not an image (DICOMDIR, viewer, text)
	Unreadable  = "unreadable"  // could not be read; nothing to keep
	Failed      = "failed"      // a store or quarantine write failed; see Reason
)

// FileOutcome is what happened to one file of the media.
type FileOutcome struct {
	Path       string          `json:"path"`
	Outcome    string          `json:"outcome"`
	Reason     string          `json:"reason,omitempty"`
	Findings   []guard.Finding `json:"findings,omitempty"`
	Instance   string          `json:"instance,omitempty"`   // imaging instance id
	Patient    string          `json:"patient,omitempty"`    // pseudonym
	Quarantine string          `json:"quarantine,omitempty"` // quarantine item id
}

// Report is the result of one import.
type Report struct {
	ID          string        `json:"id"`
	Origin      string        `json:"origin"` // as typed; sealed at rest
	Media       string        `json:"media"`
	Started     time.Time     `json:"started"`
	Duration    time.Duration `json:"duration_ns"`
	Stored      int           `json:"stored"`
	Duplicates  int           `json:"duplicates"`
	Quarantined int           `json:"quarantined"`
	Skipped     int           `json:"skipped"`
	Unreadable  int           `json:"unreadable"`
	Failed      int           `json:"failed"`
	// Studies counts the distinct studies stored or already there.
	Studies int           `json:"studies"`
	Files   []FileOutcome `json:"files"`
	Scan    guard.Summary `json:"scan"`
}

// Request says what to import and from where.
type Request struct {
	Paths []string
	// Origin says where the media came from in the operator's words, e.g.
	// "CD from Busan clinic, MRI of 2024-05-01". Words typed about media
	// may name a patient, so the origin is sealed with the import's own
	// key and returned in the report only; audit events, alerts and the
	// stored images name the import id and the media kind.
	Origin string
	// Media is the kind of media, one of MediaKinds; when empty it is read
	// from the paths (an .iso image, a zip archive, a folder, a file).
	Media string
	// Operator is who started the import, for the audit log: a staff id,
	// or "cli:USER".
	Operator string
}

// MediaKinds are the kinds of media an import may name. They are the only
// words about the media that reach the audit log and the alerts.
var MediaKinds = []string{"cd", "dvd", "usb", "iso", "zip", "folder", "file", "upload", "network"}

// importRun is one import in progress. operator, role and source are
// who started it, for the audit log.
type importRun struct {
	id, origin, media      string
	operator, role, source string
	started                time.Time
	mu                     sync.Mutex
	done                   map[string]FileOutcome
	studies                map[string]bool
}

// label names the import in events and sources without the operator's
// words: "cd import imp_…".
func (r *importRun) label() string { return r.media + " import " + r.id }

// Import scans every file of the media (directories, .iso images, zip
// archives, nested ones too) and stores each DICOM image that passes
// through the door; everything that fails is quarantined with its
// findings, never imported. A problem with one file is that file's
// outcome; the error is for the import itself (bad request, cancelled,
// audit log down).
func (in *Intake) Import(ctx context.Context, req Request) (*Report, error) {
	origin, err := checkOrigin(req.Origin)
	if err != nil {
		return nil, err
	}
	if len(req.Paths) == 0 {
		return nil, fmt.Errorf("%w: name the media to import", ErrInvalid)
	}
	media, err := mediaKind(req.Media, req.Paths)
	if err != nil {
		return nil, err
	}
	operator := req.Operator
	if operator == "" {
		operator = importer.ID
	}
	run := in.newRun(origin, media, operator, importer.Role, operator)
	return in.importMedia(ctx, run, func(s *guard.Scanner) (*guard.Report, error) { return s.Scan(ctx, req.Paths...) })
}

func (in *Intake) newRun(origin, media, operator, role, source string) *importRun {
	return &importRun{id: newID("imp_"), origin: origin, media: media, operator: operator, role: role, source: source,
		started: in.now(), done: map[string]FileOutcome{}, studies: map[string]bool{}}
}

// importMedia is every import's one path: scan reads the media with a
// scanner whose Inspect hands each file read to its end to handle (store
// or quarantine); then the import is reported and recorded.
func (in *Intake) importMedia(ctx context.Context, run *importRun, scan func(*guard.Scanner) (*guard.Report, error)) (*Report, error) {
	if err := in.Tidy(ctx); err != nil {
		return nil, err
	}
	cfg := in.cfg.Scan
	cfg.Inspect = func(ctx context.Context, res guard.FileResult, open func() (io.ReadCloser, error)) {
		run.record(in.handle(ctx, run, res, open))
	}
	rep, scanErr := scan(guard.New(cfg))
	out := run.report(rep)
	if err := in.finish(ctx, run, out, scanErr); err != nil {
		return out, err
	}
	return out, scanErr
}

// checkOrigin requires a printable origin of reasonable length.
func checkOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxReason || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", fmt.Errorf("%w: say where the media came from (the origin: 1 to %d printable characters)", ErrInvalid, maxReason)
	}
	return s, nil
}

// mediaKind checks the kind named, or reads it from the paths.
func mediaKind(kind string, paths []string) (string, error) {
	kind = strings.ToLower(strings.TrimSpace(kind))
	switch {
	case kind != "" && !slices.Contains(MediaKinds, kind):
		return "", fmt.Errorf("%w: media kind %q: use one of %s", ErrInvalid, kind, strings.Join(MediaKinds, ", "))
	case kind != "":
		return kind, nil
	case len(paths) > 1:
		return "folder", nil
	}
	switch strings.ToLower(filepath.Ext(paths[0])) {
	case ".iso":
		return "iso", nil
	case ".zip":
		return "zip", nil
	}
	if st, err := os.Stat(paths[0]); err == nil && !st.IsDir() {
		return "file", nil
	}
	return "folder", nil
}

func (r *importRun) record(o FileOutcome, study string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[o.Path] = o
	if study != "" {
		r.studies[study] = true
	}
}

// report lists every file of the scan: those the intake handled, and
// those the scanner could not read (nothing to keep).
func (r *importRun) report(scan *guard.Report) *Report {
	out := &Report{ID: r.id, Origin: r.origin, Media: r.media, Started: r.started}
	if scan != nil {
		out.Scan = scan.Summary
		for _, f := range scan.Files {
			o, ok := r.done[f.Path]
			if !ok {
				o = FileOutcome{Path: f.Path, Outcome: Unreadable, Findings: f.Findings, Reason: unreadableReason(f.Findings)}
			}
			out.add(o)
		}
	}
	sort.SliceStable(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	out.Studies = len(r.studies)
	return out
}

// unreadableReason says why the scanner could not read a file (a link
// loop, a permission), as its finding does.
func unreadableReason(fs []guard.Finding) string {
	if len(fs) > 0 {
		return fs[0].Reason + "; nothing was imported or kept"
	}
	return "the file could not be read; nothing was imported or kept"
}

func (rep *Report) add(o FileOutcome) {
	rep.Files = append(rep.Files, o)
	switch o.Outcome {
	case Stored:
		rep.Stored++
	case Duplicate:
		rep.Duplicates++
	case Quarantined:
		rep.Quarantined++
	case Skipped:
		rep.Skipped++
	case Unreadable:
		rep.Unreadable++
	default:
		rep.Failed++
	}
}

// finish audits the import as a whole with its media kind and counts, and
// keeps it in the import history with its origin sealed under a key of the
// import's own.
func (in *Intake) finish(ctx context.Context, run *importRun, rep *Report, scanErr error) error {
	ctx = context.WithoutCancel(ctx) // a cancelled import is recorded too
	rep.Duration = in.now().Sub(run.started)
	outcome, reason := audit.Success, fmt.Sprintf("%s media: %d files, %d stored, %d already stored, %d quarantined, %d skipped, %d unreadable, %d failed",
		run.media, rep.Scan.Files, rep.Stored, rep.Duplicates, rep.Quarantined, rep.Skipped, rep.Unreadable, rep.Failed)
	if scanErr != nil {
		outcome, reason = audit.Failed, reason+"; stopped: "+scanErr.Error()
	}
	ev := audit.Event{Time: in.now(), Actor: run.operator, Role: run.role, Action: "imaging.import", Purpose: "TREAT",
		Resource: "Import/" + run.id, Outcome: outcome, Source: run.source, Reason: reason}
	err := in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		dk, err := in.cfg.Keys.CreateKey(ctx, tx, importOwner(run.id), "imaging-import")
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO imaging_imports (id, origin, media, origin_sealed, operator, started_at, finished_at, files, bytes, stored, duplicates, quarantined, skipped, failed) VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			run.id, run.media, dk.Seal(originField(run.id), []byte(run.origin)), run.operator, run.started.UnixNano(), in.now().UnixNano(), rep.Scan.Files, rep.Scan.Bytes,
			rep.Stored, rep.Duplicates, rep.Quarantined, rep.Skipped+rep.Unreadable, rep.Failed)
		if err != nil {
			return err
		}
		_, err = in.cfg.Audit.AppendTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("record import %s: %w", run.id, err)
	}
	return nil
}

// handle decides one file the scan read to its end. It returns the
// outcome and, for an image stored, its study UID.
func (in *Intake) handle(ctx context.Context, run *importRun, res guard.FileResult, open func() (io.ReadCloser, error)) (FileOutcome, string) {
	o := FileOutcome{Path: res.Path, Findings: res.Findings}
	if res.Kind == guard.KindZip || res.Kind == guard.KindISO {
		if !blocking(res.Findings) {
			o.Outcome, o.Reason = Skipped, "archive or image; its files are listed on their own"
			return o, ""
		}
	}
	content, err := in.readAgain(res, open)
	if err != nil {
		if blocking(res.Findings) {
			return in.quarantine(ctx, run, heldFile{res: res}, err.Error()), ""
		}
		o.Outcome, o.Reason = Failed, err.Error()
		return o, ""
	}
	if blocking(res.Findings) {
		return in.quarantine(ctx, run, heldFile{res: res, content: content, mrn: mrnOf(content)}, ""), ""
	}
	if !res.DICOM {
		o.Outcome, o.Reason = Skipped, "not a DICOM file; not imported"
		return o, ""
	}
	return in.storeImage(ctx, run, res, content)
}

// blocking reports whether findings keep a file out: anything of medium
// severity or worse (malformed, unreadable in part, disguised, malicious).
func blocking(fs []guard.Finding) bool {
	for _, f := range fs {
		if f.Severity >= guard.Medium {
			return true
		}
	}
	return false
}

// readAgain reads the file's content again, bounded, and checks it is what
// the scanner judged.
func (in *Intake) readAgain(res guard.FileResult, open func() (io.ReadCloser, error)) ([]byte, error) {
	if open == nil {
		return nil, errors.New("the upload cannot be read a second time; send it as a file")
	}
	if res.Size > in.cfg.MaxFileBytes {
		return nil, fmt.Errorf("file of %d bytes is over the %d-byte import limit", res.Size, in.cfg.MaxFileBytes)
	}
	rc, err := open()
	if err != nil {
		return nil, fmt.Errorf("read again: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, in.cfg.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read again: %w", err)
	}
	if int64(len(b)) > in.cfg.MaxFileBytes {
		return nil, fmt.Errorf("file is over the %d-byte import limit", in.cfg.MaxFileBytes)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != res.SHA256 {
		return nil, errors.New("the file changed between the scan and the import; scan the media again")
	}
	return b, nil
}

// heldFile is a file on its way into quarantine.
type heldFile struct {
	res     guard.FileResult
	content []byte // nil when it could not be kept
	// mrn is the Patient ID the file names ("" when none can be read);
	// missed is set when the door just found no patient with it.
	mrn    string
	missed bool
}

// mrnOf reads the Patient ID of a DICOM file, even of a malformed one
// whose header was read that far; "" when there is none.
func mrnOf(content []byte) string {
	h, _ := dicomhdr.Read(content)
	return strings.TrimSpace(h.PatientID)
}

// quarantine holds a file with its findings; why, when set, adds the
// intake's own finding (why the content could not be kept or stored).
func (in *Intake) quarantine(ctx context.Context, run *importRun, f heldFile, why string) FileOutcome {
	if why != "" {
		f.res.Findings = append(f.res.Findings, guard.Finding{Path: f.res.Path, Detector: DetectIntake, Severity: guard.Medium, Reason: why, SHA256: f.res.SHA256})
	}
	o := FileOutcome{Path: f.res.Path, Findings: f.res.Findings, Outcome: Quarantined, Reason: reasonOf(f.res.Findings)}
	id, pseudonym, err := in.hold(ctx, run, f)
	if err != nil {
		o.Outcome, o.Reason = Failed, err.Error()
		return o
	}
	o.Quarantine, o.Patient = id, pseudonym
	return o
}

// reasonOf is the worst finding's reason, for the one-line report.
func reasonOf(fs []guard.Finding) string {
	var worst *guard.Finding
	for i := range fs {
		if worst == nil || fs[i].Severity > worst.Severity {
			worst = &fs[i]
		}
	}
	if worst == nil {
		return ""
	}
	return fmt.Sprintf("%s (%s): %s", worst.Detector, worst.Severity, worst.Reason)
}

// storeImage stores a clean DICOM file through the door, preamble zeroed;
// a file the store cannot take goes to quarantine with the reason.
func (in *Intake) storeImage(ctx context.Context, run *importRun, res guard.FileResult, content []byte) (FileOutcome, string) {
	o := FileOutcome{Path: res.Path, Findings: res.Findings}
	h, err := dicomhdr.Read(content)
	held := heldFile{res: res, content: content, mrn: strings.TrimSpace(h.PatientID)}
	switch {
	case err != nil:
		return in.quarantine(ctx, run, held, err.Error()), ""
	case h.Directory():
		o.Outcome, o.Reason = Skipped, "DICOMDIR (the media's index); not imported"
		return o, ""
	case len(h.Missing()) > 0:
		return in.quarantine(ctx, run, held, "DICOM file lacks "+strings.Join(h.Missing(), ", ")+"; it cannot be indexed"), ""
	}
	data := bytes.Clone(content) // the quarantine keeps the file as it came
	dicomhdr.ZeroPreamble(data)
	rec, err := in.cfg.Door.StoreImaging(ctx, importRequest, h.PatientID, instanceOf(h, data, run.label()))
	if err != nil {
		return in.unstored(ctx, run, held, err), ""
	}
	o.Outcome, o.Instance, o.Patient = Stored, rec.ID, rec.Pseudonym
	if rec.Duplicate {
		o.Outcome, o.Reason = Duplicate, "the same instance is already stored"
	}
	return o, h.StudyUID
}

// unstored quarantines a clean image the door refused, saying what a
// person must do; a failure of the store itself is the file's failure.
func (in *Intake) unstored(ctx context.Context, run *importRun, f heldFile, err error) FileOutcome {
	switch {
	case errors.Is(err, records.ErrNotFound):
		f.missed = true
		return in.quarantine(ctx, run, f, "no registered patient has the file's Patient ID (MRN); register the patient, then release the file")
	case errors.Is(err, records.ErrInvalid), errors.Is(err, records.ErrConflict), errors.Is(err, records.ErrDenied):
		return in.quarantine(ctx, run, f, "the imaging store refused the file: "+err.Error())
	}
	return FileOutcome{Path: f.res.Path, Findings: f.res.Findings, Outcome: Failed, Reason: "store: " + err.Error()}
}

// instanceOf describes a file for the door; data is the file as stored,
// source a label of medsec's ids and the media kind (never the origin
// as typed).
func instanceOf(h dicomhdr.Header, data []byte, source string) records.ImagingInstance {
	sum := sha256.Sum256(data)
	return records.ImagingInstance{StudyUID: h.StudyUID, SeriesUID: h.SeriesUID, InstanceUID: h.InstanceUID, SOPClassUID: h.SOPClassUID,
		Modality: h.Modality, StudyDate: h.StudyDate, Description: h.Description, SHA256: hex.EncodeToString(sum[:]),
		Size: int64(len(data)), Effective: h.Effective(), Source: source, Data: data}
}
