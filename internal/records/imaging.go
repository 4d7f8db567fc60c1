package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Door operations for imaging (location 5, PACS). A DICOM instance is kept
// whole and sealed with its patient's data key; its study, series and
// instance UIDs are identifiers, so they are found through keyed blind
// indexes and stored only inside the sealed description.

// ErrConflict means an instance with the same SOP Instance UID is already
// stored with other content or for another patient. HTTP 409. Keep the new
// file out (quarantine it) and ask the sender which one is right.
var ErrConflict = errors.New("conflicts with stored data")

// Blind-index kinds of the imaging identifiers.
const (
	indexStudyUID    = "dicom-study-uid"
	indexSeriesUID   = "dicom-series-uid"
	indexInstanceUID = "dicom-instance-uid"
	indexImageSHA256 = "dicom-sha256"
)

// ImagingInstance is one DICOM instance as the door stores and returns it.
type ImagingInstance struct {
	ID          string    `json:"id"`
	PatientID   string    `json:"-"`
	Pseudonym   string    `json:"patient"`
	StudyUID    string    `json:"study_uid"`
	SeriesUID   string    `json:"series_uid"`
	InstanceUID string    `json:"instance_uid"` // SOP Instance UID
	SOPClassUID string    `json:"sop_class_uid,omitempty"`
	Modality    string    `json:"modality,omitempty"`
	StudyDate   string    `json:"study_date,omitempty"` // as the file says (DA, YYYYMMDD)
	Description string    `json:"description,omitempty"`
	SHA256      string    `json:"sha256"` // of the stored file
	Size        int64     `json:"size"`
	Effective   time.Time `json:"effective"` // study date and time, or the import time
	Source      string    `json:"source,omitempty"`
	Created     time.Time `json:"created"`
	CreatedBy   string    `json:"created_by"`
	// Data is the Part 10 file (preamble zeroed); nil in listings.
	Data []byte `json:"-"`
}

// imagingMeta is the sealed description of an instance.
type imagingMeta struct {
	Study       string `json:"study"`
	Series      string `json:"series"`
	Instance    string `json:"instance"`
	SOPClass    string `json:"sop_class,omitempty"`
	Modality    string `json:"modality,omitempty"`
	StudyDate   string `json:"study_date,omitempty"`
	Description string `json:"description,omitempty"`
	SHA256      string `json:"sha256"`
}

// ImagingReceipt says what StoreImaging did.
type ImagingReceipt struct {
	ID        string
	PatientID string
	Pseudonym string
	// Duplicate is true when the same instance (UID and content) was
	// already stored; nothing new was written.
	Duplicate bool
}

// StoreImaging stores one DICOM instance for the patient whose medical
// record number the file names (Patient ID, 0010,0020). The caller (the
// import job) must be allowed to write imaging for that patient; the audit
// event names where the file came from (in.Source: a label that
// identifies no one, see checkSource) and commits with the sealed row.
// Errors: ErrNotFound when no live patient has the MRN (the failed
// attempt is audited), ErrInvalid for missing identifiers, an identifying
// source or an MRN shared by several patients, ErrConflict when the
// instance UID is already stored with other content, *DeniedError.
func (d *Door) StoreImaging(ctx context.Context, req Request, mrn string, in ImagingInstance) (ImagingReceipt, error) {
	if err := checkImaging(in); err != nil {
		return ImagingReceipt{}, err
	}
	facts, err := d.patientByMRN(ctx, req, mrn, in.Source)
	if err != nil {
		return ImagingReceipt{}, err
	}
	a := &access{req: req, action: ActionWrite, class: ClassImaging, facts: facts,
		resource: "Patient/" + facts.Pseudonym + "/imaging[1]"}
	if err := d.authorize(ctx, a); err != nil {
		return ImagingReceipt{}, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return ImagingReceipt{}, d.auditFailure(ctx, a, err)
	}
	rec := ImagingReceipt{ID: newID("img_"), PatientID: facts.ID, Pseudonym: facts.Pseudonym}
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		return d.insertImaging(ctx, tx, a, pk, in, &rec)
	})
	if errors.Is(err, ErrConflict) {
		return ImagingReceipt{}, d.auditFailure(ctx, a, err)
	}
	if err != nil {
		return ImagingReceipt{}, fmt.Errorf("store imaging: %w", err)
	}
	return rec, nil
}

func checkImaging(in ImagingInstance) error {
	switch {
	case cleanUID(in.StudyUID) == "" || cleanUID(in.SeriesUID) == "" || cleanUID(in.InstanceUID) == "":
		return fmt.Errorf("%w: a DICOM instance needs its study, series and SOP instance UIDs", ErrInvalid)
	case len(in.Data) == 0 || in.SHA256 == "":
		return fmt.Errorf("%w: a DICOM instance needs its file and the file's SHA-256", ErrInvalid)
	}
	return checkSource(in.Source)
}

// maxSource bounds an instance's source label.
const maxSource = 160

// medsecID is one of medsec's own ids (imp_…, q_…, st_…): random, so its
// digits identify no one.
var medsecID = regexp.MustCompile(`^[a-z]{1,12}_[0-9a-z]{6,40}$`)

// checkSource refuses a source that may identify a person. The source is
// written in plaintext (the source column and the audit reason), so it
// must be a label (the intake passes its import id and the media kind),
// never what an operator typed about the media: no Hangul (names), no run
// of five or more digits outside medsec's ids (MRNs, resident
// registration and phone numbers), nothing unprintable.
func checkSource(s string) error {
	bad := len(s) > maxSource || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || unicode.Is(unicode.Hangul, r) })
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if !medsecID.MatchString(w) && digitRun(w) >= 5 {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%w: an imaging source must be a short label without names or identifying numbers (at most %d bytes)", ErrInvalid, maxSource)
	}
	return nil
}

// digitRun is the length of the longest run of digits in w.
func digitRun(w string) int {
	longest, run := 0, 0
	for _, r := range w {
		if unicode.IsDigit(r) {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// cleanUID drops the padding DICOM allows after a UID.
func cleanUID(uid string) string { return strings.TrimRight(strings.TrimSpace(uid), "\x00 ") }

// MatchImaging names the patient a DICOM file belongs to by the MRN it
// carries (Patient ID, 0010,0020), for a caller the policy lets write that
// patient's imaging: the intake asks it for a file it keeps in quarantine,
// so the file is erased with the patient and its events name the
// patient's pseudonym. The receipt has the patient's id and pseudonym and
// no instance; nothing is written, read or unsealed, and the caller
// records the match in its own audit event. A miss is audited as in
// StoreImaging (source says which file asked). Errors: ErrNotFound,
// ErrInvalid (an MRN shared by several patients), *DeniedError.
func (d *Door) MatchImaging(ctx context.Context, req Request, mrn, source string) (ImagingReceipt, error) {
	if err := checkSource(source); err != nil {
		return ImagingReceipt{}, err
	}
	facts, err := d.patientByMRN(ctx, req, mrn, source)
	if err != nil {
		return ImagingReceipt{}, err
	}
	a := &access{req: req, action: ActionWrite, class: ClassImaging, facts: facts, resource: "Patient/" + facts.Pseudonym + "/imaging"}
	if err := d.authorize(ctx, a); err != nil {
		return ImagingReceipt{}, err
	}
	return ImagingReceipt{PatientID: facts.ID, Pseudonym: facts.Pseudonym}, nil
}

// patientByMRN finds the one live patient with the MRN, for a caller the
// policy lets write imaging. A miss is audited as a failed write, so
// probing for MRNs leaves a trace; the MRN itself never enters the log.
func (d *Door) patientByMRN(ctx context.Context, req Request, mrn, source string) (*PatientFacts, error) {
	// Whoever may not write imaging at all learns nothing about which MRNs
	// exist: they are refused before the lookup.
	if err := d.authorize(ctx, &access{req: req, action: ActionWrite, class: ClassImaging, resource: "Patient?mrn"}); err != nil {
		return nil, err
	}
	ids, err := d.indexed(ctx, "mrn", normalize("mrn", mrn))
	if err != nil {
		return nil, err
	}
	var cause error
	switch len(ids) {
	case 0:
		cause = fmt.Errorf("%w: no registered patient has the file's Patient ID", ErrNotFound)
	case 1:
		return d.facts(ctx, d.db, ids[0])
	default:
		cause = fmt.Errorf("%w: the file's Patient ID belongs to %d patients", ErrInvalid, len(ids))
	}
	a := &access{req: req, action: ActionWrite, class: ClassImaging, resource: "Patient?mrn"}
	if _, err := d.log.Append(ctx, d.event(a, audit.Failed, cause.Error()+"; imported from "+source)); err != nil {
		return nil, errors.Join(cause, err)
	}
	return nil, cause
}

// indexed lists the patients whose blind index of kind holds value.
func (d *Door) indexed(ctx context.Context, kind, value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	rows, err := d.db.Query(ctx, `SELECT patient_id FROM phi_index WHERE kind = ? AND digest = ?`, kind, d.blindIndex(kind, value))
	if err != nil {
		return nil, fmt.Errorf("find patient: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// insertImaging writes the row and its audit event in tx, or finds the
// instance already there.
func (d *Door) insertImaging(ctx context.Context, tx *store.Tx, a *access, pk *keys.PatientKey, in ImagingInstance, rec *ImagingReceipt) error {
	dup, err := d.storedInstance(ctx, tx, in, rec.PatientID)
	if err != nil {
		return err
	}
	reason := "imported from " + in.Source
	if dup != "" {
		rec.ID, rec.Duplicate = dup, true
		reason = "already stored as " + dup + "; imported again from " + in.Source
	}
	a.resource = "ImagingInstance/" + rec.ID
	if _, err := d.log.AppendTx(ctx, tx, d.event(a, audit.Success, reason)); err != nil {
		return err
	}
	if dup != "" {
		return nil
	}
	return d.insertImagingRow(ctx, tx, pk, a.req.Who.ID, in, rec)
}

// storedInstance returns the id of the same instance already stored for
// the patient, "" when there is none, or ErrConflict.
func (d *Door) storedInstance(ctx context.Context, q store.Querier, in ImagingInstance, patientID string) (string, error) {
	var id, owner string
	var content []byte
	err := q.QueryRow(ctx, `SELECT id, patient_id, content_digest FROM phi_imaging WHERE instance_digest = ?`,
		d.blindIndex(indexInstanceUID, cleanUID(in.InstanceUID))).Scan(&id, &owner, &content)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("look up instance: %w", err)
	case owner != patientID:
		return "", fmt.Errorf("%w: the SOP Instance UID is already stored for another patient", ErrConflict)
	case string(content) != string(d.blindIndex(indexImageSHA256, in.SHA256)):
		return "", fmt.Errorf("%w: the SOP Instance UID is already stored as %s with other content", ErrConflict, id)
	}
	return id, nil
}

func (d *Door) insertImagingRow(ctx context.Context, tx *store.Tx, pk *keys.PatientKey, by string, in ImagingInstance, rec *ImagingReceipt) error {
	meta, err := json.Marshal(imagingMeta{Study: cleanUID(in.StudyUID), Series: cleanUID(in.SeriesUID), Instance: cleanUID(in.InstanceUID),
		SOPClass: cleanUID(in.SOPClassUID), Modality: in.Modality, StudyDate: in.StudyDate, Description: in.Description, SHA256: in.SHA256})
	if err != nil {
		return err
	}
	now := d.now()
	eff := in.Effective
	if eff.IsZero() {
		eff = now
	}
	_, err = tx.Exec(ctx, `INSERT INTO phi_imaging (id, patient_id, study_digest, series_digest, instance_digest, content_digest, effective_at, created_at, created_by, source, size, meta, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.PatientID, d.blindIndex(indexStudyUID, cleanUID(in.StudyUID)), d.blindIndex(indexSeriesUID, cleanUID(in.SeriesUID)),
		d.blindIndex(indexInstanceUID, cleanUID(in.InstanceUID)), d.blindIndex(indexImageSHA256, in.SHA256),
		eff.UnixNano(), now.UnixNano(), by, in.Source, int64(len(in.Data)),
		pk.Seal(imagingField(rec.ID, "meta"), meta), pk.Seal(imagingField(rec.ID, "data"), in.Data))
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: the SOP Instance UID was stored at the same moment by another import", ErrConflict)
	}
	return err
}

func imagingField(id, name string) keys.Field {
	return keys.Field{Table: "phi_imaging", Record: id, Name: name}
}

// ImagingInstances lists a patient's stored instances, newest study first,
// without their files: one audited read of the patient's imaging.
func (d *Door) ImagingInstances(ctx context.Context, req Request, patientID string) ([]ImagingInstance, error) {
	return d.readImaging(ctx, req, patientID, func(p string) string { return "Patient/" + p + "/imaging" }, `patient_id = ?`, []any{patientID}, false)
}

// ImagingStudy reads every instance of a study, files included, as one
// audited read of its patient's imaging. ErrNotFound when no instance of
// the study is stored.
func (d *Door) ImagingStudy(ctx context.Context, req Request, studyUID string) ([]ImagingInstance, error) {
	digest := d.blindIndex(indexStudyUID, cleanUID(studyUID))
	patientID, err := d.imagingOwner(ctx, `study_digest = ?`, digest)
	if err != nil {
		return nil, err
	}
	return d.readImaging(ctx, req, patientID, func(p string) string { return "Patient/" + p + "/ImagingStudy" }, `patient_id = ? AND study_digest = ?`, []any{patientID, digest}, true)
}

// ImagingInstance reads one instance by id, its file included.
func (d *Door) ImagingInstance(ctx context.Context, req Request, id string) (ImagingInstance, error) {
	patientID, err := d.imagingOwner(ctx, `id = ?`, id)
	if err != nil {
		return ImagingInstance{}, err
	}
	out, err := d.readImaging(ctx, req, patientID, func(string) string { return "ImagingInstance/" + id }, `id = ?`, []any{id}, true)
	if err != nil {
		return ImagingInstance{}, err
	}
	return out[0], nil
}

// imagingOwner returns the one patient whose rows match where.
func (d *Door) imagingOwner(ctx context.Context, where string, arg any) (string, error) {
	rows, err := d.db.Query(ctx, `SELECT DISTINCT patient_id FROM phi_imaging WHERE `+where, arg)
	if err != nil {
		return "", fmt.Errorf("find imaging: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", err
		}
		ids = append(ids, id)
	}
	switch {
	case rows.Err() != nil:
		return "", rows.Err()
	case len(ids) == 0:
		return "", fmt.Errorf("%w: no such imaging study or instance", ErrNotFound)
	case len(ids) > 1:
		return "", fmt.Errorf("%w: the study UID is stored for %d patients", ErrConflict, len(ids))
	}
	return ids[0], nil
}

// readImaging decides, audits and only then unseals the rows of one
// patient that match where.
func (d *Door) readImaging(ctx context.Context, req Request, patientID string, resource func(pseudonym string) string, where string, args []any, withData bool) ([]ImagingInstance, error) {
	facts, err := d.facts(ctx, d.db, patientID)
	if err != nil {
		return nil, err
	}
	a := &access{req: req, action: ActionRead, class: ClassImaging, facts: facts, resource: resource(facts.Pseudonym)}
	if err := d.authorize(ctx, a); err != nil {
		return nil, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return nil, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return nil, err
	}
	return d.queryImaging(ctx, pk, facts, where, args, withData)
}

func (d *Door) queryImaging(ctx context.Context, pk *keys.PatientKey, facts *PatientFacts, where string, args []any, withData bool) ([]ImagingInstance, error) {
	data := "NULL"
	if withData {
		data = "data"
	}
	rows, err := d.db.Query(ctx, `SELECT id, effective_at, created_at, created_by, source, size, meta, `+data+` FROM phi_imaging WHERE `+where+` ORDER BY effective_at DESC, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read imaging: %w", err)
	}
	defer rows.Close()
	var out []ImagingInstance
	for rows.Next() {
		in, err := scanImaging(rows, pk, facts)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no such imaging study or instance", ErrNotFound)
	}
	return out, nil
}

func scanImaging(rows scanner, pk *keys.PatientKey, facts *PatientFacts) (ImagingInstance, error) {
	in := ImagingInstance{PatientID: facts.ID, Pseudonym: facts.Pseudonym}
	var eff, created int64
	var meta, data []byte
	if err := rows.Scan(&in.ID, &eff, &created, &in.CreatedBy, &in.Source, &in.Size, &meta, &data); err != nil {
		return in, err
	}
	in.Effective, in.Created = time.Unix(0, eff), time.Unix(0, created)
	plain, err := pk.Open(imagingField(in.ID, "meta"), meta)
	if err != nil {
		return in, err
	}
	var m imagingMeta
	if err := json.Unmarshal(plain, &m); err != nil {
		return in, fmt.Errorf("read imaging %s: %w", in.ID, keys.ErrTampered)
	}
	in.StudyUID, in.SeriesUID, in.InstanceUID, in.SOPClassUID = m.Study, m.Series, m.Instance, m.SOPClass
	in.Modality, in.StudyDate, in.Description, in.SHA256 = m.Modality, m.StudyDate, m.Description, m.SHA256
	if data != nil {
		in.Data, err = pk.Open(imagingField(in.ID, "data"), data)
	}
	return in, err
}
