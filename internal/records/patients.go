package records

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// Patient is a patient's demographics as the door returns them.
type Patient struct {
	ID         string
	Pseudonym  string
	Department string
	Ward       string
	Labels     []string
	Created    time.Time

	// Care relationship: who treats the patient (staff ids).
	Attending       string
	CareTeam        []string
	ActiveEncounter bool
	// StaffMember marks a patient who works here: every read of their
	// record is flagged co-worker.
	StaffMember bool

	Name      string
	RRN       string // Korean resident registration number
	MRN       string // the hospital's medical record number
	Phone     string
	BirthDate string // YYYY-MM-DD
	Sex       string // male | female | other | unknown
	Address   string
}

// sealedFields are the identifying fields, each sealed on its own.
var sealedFields = []string{"name", "rrn", "mrn", "phone", "birth_date", "sex", "address"}

// indexedFields can find a patient by exact value.
var indexedFields = []string{"rrn", "mrn", "phone"}

func (p *Patient) field(name string) *string {
	switch name {
	case "name":
		return &p.Name
	case "rrn":
		return &p.RRN
	case "mrn":
		return &p.MRN
	case "phone":
		return &p.Phone
	case "birth_date":
		return &p.BirthDate
	case "sex":
		return &p.Sex
	case "address":
		return &p.Address
	}
	return nil
}

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// normalize makes blind-index lookups insensitive to formatting.
func normalize(kind, v string) string {
	if kind == "rrn" || kind == "phone" {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, v)
	}
	return strings.TrimSpace(strings.ToUpper(v))
}

// RegisterPatient creates a patient with a fresh data key, sealing every
// identifying field. The audit event commits with the data.
func (d *Door) RegisterPatient(ctx context.Context, req Request, in Patient) (Patient, error) {
	if strings.TrimSpace(in.Name) == "" {
		return Patient{}, fmt.Errorf("%w: a patient needs a name", ErrInvalid)
	}
	if _, err := d.encodeLabels("", in.Labels); err != nil {
		return Patient{}, err
	}
	p := in
	p.ID = newID("pt_")
	p.Pseudonym = d.Pseudonym(p.ID)
	p.Created = d.now()
	a := &access{req: req, action: ActionWrite, class: ClassDemographics, resource: "Patient/" + p.Pseudonym,
		facts: p.facts()}
	if err := d.authorize(ctx, a); err != nil {
		return Patient{}, err
	}
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := d.log.AppendTx(ctx, tx, d.event(a, audit.Success, "patient registered")); err != nil {
			return err
		}
		return d.insertPatient(ctx, tx, &p, req.Who.ID)
	})
	if err != nil {
		return Patient{}, fmt.Errorf("register patient: %w", err)
	}
	return p, nil
}

func (d *Door) insertPatient(ctx context.Context, tx *store.Tx, p *Patient, by string) error {
	labels, err := d.encodeLabels(p.ID, p.Labels)
	if err != nil {
		return err
	}
	pk, err := d.keys.CreatePatientKey(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO phi_patients (id, pseudonym, department, ward, labels, attending, care_team, active_encounter, created_at, created_by, staff_member, surname_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Pseudonym, p.Department, p.Ward, labels, p.Attending, strings.Join(p.CareTeam, ","), boolInt(p.ActiveEncounter), p.Created.UnixNano(), by,
		boolInt(p.StaffMember), d.surnameDigest(SurnameOf(p.Name)))
	if err != nil {
		return err
	}
	for _, f := range sealedFields {
		v := *p.field(f)
		if v == "" {
			continue
		}
		sealed := pk.Seal(keys.Field{Table: "phi_fields", Record: p.ID, Name: f}, []byte(v))
		if _, err := tx.Exec(ctx, `INSERT INTO phi_fields (patient_id, field, sealed) VALUES (?, ?, ?)`, p.ID, f, sealed); err != nil {
			return err
		}
	}
	for _, f := range indexedFields {
		if v := normalize(f, *p.field(f)); v != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO phi_index (kind, digest, patient_id) VALUES (?, ?, ?)`, f, d.blindIndex(f, v), p.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// factsColumns are the columns of phi_patients a decision weighs.
const factsColumns = `pseudonym, department, ward, labels, attending, care_team, active_encounter, destroyed_at, consents, staff_member, surname_digest`

// factsScan receives the facts columns of one patient's row.
type factsScan struct {
	f                      PatientFacts
	labels, team, consents string
	active, staffMember    int
	destroyed              *int64
}

func (s *factsScan) targets() []any {
	return []any{&s.f.Pseudonym, &s.f.Department, &s.f.Ward, &s.labels, &s.f.Attending, &s.team, &s.active, &s.destroyed, &s.consents, &s.staffMember, &s.f.surname}
}

// done decodes what was scanned into the facts of patient id.
func (d *Door) done(s *factsScan, id string) (*PatientFacts, error) {
	f := &s.f
	f.ID = id
	f.Labels, f.CareTeam = d.decodeLabels(id, s.labels), splitList(s.team)
	f.ActiveEncounter = s.active != 0
	f.Destroyed = s.destroyed != nil
	f.StaffMember = s.staffMember != 0
	var err error
	if f.Consents, err = decodeTerms(s.consents); err != nil {
		return nil, fmt.Errorf("read consents of %s: %w", f.Pseudonym, err)
	}
	return f, nil
}

// facts loads the patient's non-identifying attributes for the decision.
func (d *Door) facts(ctx context.Context, q store.Querier, id string) (*PatientFacts, error) {
	var s factsScan
	err := q.QueryRow(ctx, `SELECT `+factsColumns+` FROM phi_patients WHERE id = ?`, id).Scan(s.targets()...)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: patient %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read patient %s: %w", id, err)
	}
	return d.done(&s, id)
}

func (p *Patient) facts() *PatientFacts {
	return &PatientFacts{ID: p.ID, Pseudonym: p.Pseudonym, Department: p.Department, Ward: p.Ward, Labels: p.Labels,
		Attending: p.Attending, CareTeam: p.CareTeam, ActiveEncounter: p.ActiveEncounter, StaffMember: p.StaffMember}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Facts returns the non-identifying attributes of a patient, for callers
// that must build a decision context (no PHI, no audit needed).
func (d *Door) Facts(ctx context.Context, id string) (*PatientFacts, error) {
	return d.facts(ctx, d.db, id)
}

// Patient reads a patient's demographics.
func (d *Door) Patient(ctx context.Context, req Request, id string) (Patient, error) {
	facts, err := d.facts(ctx, d.db, id)
	if err != nil {
		return Patient{}, err
	}
	a := &access{req: req, action: ActionRead, class: ClassDemographics, facts: facts, resource: "Patient/" + facts.Pseudonym}
	if err := d.authorize(ctx, a); err != nil {
		return Patient{}, err
	}
	pk, err := d.patientKey(ctx, facts)
	if err != nil {
		return Patient{}, d.auditFailure(ctx, a, err)
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return Patient{}, err
	}
	return d.unsealPatient(ctx, pk, facts)
}

// patientKey returns the key or the clear destroyed error, naming the
// patient by pseudonym.
func (d *Door) patientKey(ctx context.Context, f *PatientFacts) (*keys.PatientKey, error) {
	// The facts were read in this request: a patient not marked destroyed
	// still has a key, and its unwrapped copy may come from the cache.
	if !f.Destroyed {
		if pk, ok := d.keys.Cached(f.ID); ok {
			return pk, nil
		}
	}
	pk, err := d.keys.ForPatient(ctx, d.db, f.ID)
	var de *keys.DestroyedError
	if errors.As(err, &de) {
		de.Patient = f.Pseudonym
	}
	return pk, err
}

func (d *Door) unsealPatient(ctx context.Context, pk *keys.PatientKey, f *PatientFacts) (Patient, error) {
	p := Patient{ID: f.ID, Pseudonym: f.Pseudonym, Department: f.Department, Ward: f.Ward, Labels: f.Labels,
		Attending: f.Attending, CareTeam: f.CareTeam, ActiveEncounter: f.ActiveEncounter, StaffMember: f.StaffMember}
	rows, err := d.db.Query(ctx, `SELECT field, sealed FROM phi_fields WHERE patient_id = ?`, f.ID)
	if err != nil {
		return Patient{}, fmt.Errorf("read patient %s: %w", f.Pseudonym, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var sealed []byte
		if err := rows.Scan(&name, &sealed); err != nil {
			return Patient{}, err
		}
		dst := p.field(name)
		if dst == nil {
			continue
		}
		pt, err := pk.Open(keys.Field{Table: "phi_fields", Record: f.ID, Name: name}, sealed)
		if err != nil {
			return Patient{}, err
		}
		*dst = string(pt)
	}
	return p, rows.Err()
}

// FindPatient finds patients by an exact identifier (rrn, mrn or phone)
// through the blind index. The search is audited; the caller then reads the
// patient it meant.
func (d *Door) FindPatient(ctx context.Context, req Request, kind, value string) ([]string, error) {
	if !slices.Contains(indexedFields, kind) {
		return nil, fmt.Errorf("%w: patients can be found by %s, not %q", ErrInvalid, strings.Join(indexedFields, ", "), kind)
	}
	a := &access{req: req, action: ActionSearch, class: ClassDemographics, resource: "Patient?" + kind}
	if err := d.authorize(ctx, a); err != nil {
		return nil, err
	}
	if err := d.auditRead(ctx, a, ""); err != nil {
		return nil, err
	}
	rows, err := d.db.Query(ctx, `SELECT patient_id FROM phi_index WHERE kind = ? AND digest = ?`, kind, d.blindIndex(kind, normalize(kind, value)))
	if err != nil {
		return nil, err
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

// DestroyPatient crypto-shreds a patient: the data key is destroyed, the
// blind indexes removed, and every later read fails with a clear
// "destroyed on DATE by BASIS" error. basis says why ("REQUEST …" or
// "POLICY …"). The audit log keeps only the pseudonym, so it still verifies.
func (d *Door) DestroyPatient(ctx context.Context, req Request, id, basis string) error {
	if strings.TrimSpace(basis) == "" {
		return fmt.Errorf("%w: destruction needs a basis (REQUEST … or POLICY …)", ErrInvalid)
	}
	facts, err := d.facts(ctx, d.db, id)
	if err != nil {
		return err
	}
	a := &access{req: req, action: ActionDestroy, class: ClassDemographics, facts: facts, resource: "Patient/" + facts.Pseudonym}
	if err := d.authorize(ctx, a); err != nil {
		return err
	}
	err = d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := d.keys.DestroyPatientKey(ctx, tx, id, req.Who.ID, basis); err != nil {
			return err
		}
		if _, err := d.log.AppendTx(ctx, tx, d.event(a, audit.Success, "crypto-shredded: "+basis)); err != nil {
			return err
		}
		if err := deletePatientRows(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE phi_patients SET destroyed_at = ? WHERE id = ?`, d.now().UnixNano(), id)
		return err
	})
	if err != nil {
		var de *keys.DestroyedError
		if errors.As(err, &de) {
			de.Patient = facts.Pseudonym
		}
		return fmt.Errorf("destroy patient %s: %w", facts.Pseudonym, err)
	}
	// Push freed pages (which secure_delete zeroed) out of the WAL too.
	return d.db.Compact(ctx)
}

// ResolvePseudonym returns the internal id of the patient with the
// pseudonym (device certificates and the audit log name patients by
// pseudonym only). It reveals nothing identifying, so it is not audited.
func (d *Door) ResolvePseudonym(ctx context.Context, pseudonym string) (string, error) {
	var id string
	err := d.db.QueryRow(ctx, `SELECT id FROM phi_patients WHERE pseudonym = ?`, pseudonym).Scan(&id)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: patient %s", ErrNotFound, pseudonym)
	}
	return id, err
}

// On destruction the patient's identifying rows go (blind indexes, sealed
// fields, consents, portal tokens): without the key their sealed values are
// noise, but keyed digests could still link the pseudonym to a guessed
// value. Records and imaging rows stay as empty shells (id, patient, class,
// dates) so that a later read by record id or study UID still answers "destroyed on DATE by BASIS" instead
// of "not found"; their contents and code digests are wiped. Break-glass
// sessions stay as access-control evidence (their reasons are sealed and
// now unreadable).
var shreddedTables = []string{"phi_index", "phi_fields", "phi_consents", "phi_portal_tokens"}

var shellUpdates = []string{
	`UPDATE phi_records SET code_digest = NULL, code = ?, payload = ?, labels = '' WHERE patient_id = ?`,
	`UPDATE phi_imaging SET content_digest = ?, meta = ?, data = ? WHERE patient_id = ?`,
}

func deletePatientRows(ctx context.Context, tx *store.Tx, id string) error {
	for _, t := range shreddedTables {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE patient_id = ?`, id); err != nil {
			return fmt.Errorf("delete %s rows: %w", t, err)
		}
	}
	empty := []byte{}
	if _, err := tx.Exec(ctx, shellUpdates[0], empty, empty, id); err != nil {
		return fmt.Errorf("wipe records: %w", err)
	}
	if _, err := tx.Exec(ctx, shellUpdates[1], empty, empty, empty, id); err != nil {
		return fmt.Errorf("wipe imaging: %w", err)
	}
	return nil
}
