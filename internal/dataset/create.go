package dataset

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// DefaultUnitSize is the patients read and sealed per job unit: small
// enough that an interruption loses little, large enough that the journal
// stays short.
const DefaultUnitSize = 200

// CreateRequest asks for a dataset.
type CreateRequest struct {
	// Who is the researcher, signed in; every read is decided for them.
	Who  identity.Principal
	Spec *Spec
	// SpecYAML is the spec as read; the manifest carries it verbatim and
	// its digest ties a resumed job to the same spec.
	SpecYAML []byte
	// Out is the dataset directory to make; it must not exist. Its job
	// directory is Out + ".partial".
	Out string
	// Format overrides the spec's format ("" keeps it; default parquet).
	Format string
	// UnitSize is the patients per job unit (default DefaultUnitSize).
	UnitSize int
	// Progress receives the job's progress (nil: none).
	Progress Progress
}

// Created is a finished dataset.
type Created struct {
	Info     Info
	Manifest *Manifest
	Dir      string
	// ResumedUnits counts the units an interrupted run had already done.
	ResumedUnits int
}

func (r *CreateRequest) normalize() error {
	if r.Spec == nil || len(r.SpecYAML) == 0 {
		return fmt.Errorf("create dataset: no spec: %w", ErrSpec)
	}
	if r.Format == "" {
		r.Format = r.Spec.Format
	}
	if r.Format == "" {
		r.Format = FormatParquet
	}
	if !validFormat(r.Format) {
		return fmt.Errorf("create dataset: format %q: want parquet, csv or ndjson: %w", r.Format, ErrSpec)
	}
	if r.UnitSize == 0 {
		r.UnitSize = DefaultUnitSize
	}
	if r.UnitSize < 1 || r.UnitSize > 400 {
		return fmt.Errorf("create dataset: unit size %d: want 1 to 400 patients: %w", r.UnitSize, ErrSpec)
	}
	if r.Progress == nil {
		r.Progress = NoProgress{}
	}
	if strings.TrimSpace(r.Out) == "" {
		return fmt.Errorf("create dataset: name the output directory: %w", ErrSpec)
	}
	var err error
	r.Out, err = filepath.Abs(r.Out)
	return err
}

// Create makes the dataset r asks for, or resumes the interrupted job of
// the same output directory and spec. On success the directory holds the
// data file, manifest.json and manifest.sig, and the register holds the
// members and their sealed lineage. A refusal (risk, unreachable model,
// empty cohort, bad spec) leaves nothing behind; an interruption
// (ErrInterrupted) keeps the job directory for the next run.
func (s *Service) Create(ctx context.Context, r CreateRequest) (*Created, error) {
	if err := r.normalize(); err != nil {
		return nil, err
	}
	if err := r.Spec.Check(); err != nil {
		return nil, err
	}
	jb, err := s.openJob(ctx, r)
	if err != nil {
		return nil, err
	}
	if jb.info.State == StateComplete {
		return jb.finish(ctx)
	}
	c, err := jb.run(ctx)
	if err != nil {
		return nil, jb.fail(ctx, err)
	}
	return c, nil
}

// job is one dataset job in progress.
type job struct {
	s       *Service
	req     CreateRequest
	dir     string
	j       *journal
	info    Info
	secret  []byte
	unitKey []byte
	cohort  cohortRecord
	resumed int
}

// cohortRecord is the screening's result, sealed in the job directory so
// a resumed job reads the same members.
type cohortRecord struct {
	Candidates int                      `json:"candidates"`
	Members    []records.ResearchMember `json:"members"`
	Excluded   int                      `json:"excluded"`
	Policies   []string                 `json:"policies"`
	Flags      []string                 `json:"flags"`
}

func (s *Service) openJob(ctx context.Context, r CreateRequest) (*job, error) {
	if _, err := os.Stat(r.Out); err == nil {
		s.removeFinishedJob(ctx, jobDir(r.Out))
		return nil, fmt.Errorf("create dataset: %s: %w", r.Out, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create dataset: %w", err)
	}
	dir := jobDir(r.Out)
	if _, err := os.Stat(dir); err == nil {
		return s.resumeJob(ctx, r, dir)
	}
	return s.newJob(ctx, r, dir)
}

// removeFinishedJob removes the job directory a crash left behind after
// its dataset was registered and renamed into place.
func (s *Service) removeFinishedJob(ctx context.Context, dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		return
	}
	j, err := parseJournal(raw)
	if err != nil {
		return
	}
	if in, err := s.Get(ctx, j.Dataset); err == nil && in.State == StateComplete && !exists(filepath.Join(dir, stageDir)) {
		os.RemoveAll(dir)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func newDatasetID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "ds_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (s *Service) newJob(ctx context.Context, r CreateRequest, dir string) (*job, error) {
	secret, err := s.jobSecret(ctx, r.Spec)
	if err != nil {
		return nil, err
	}
	jb := &job{s: s, req: r, dir: dir, secret: secret}
	jb.info = Info{ID: newDatasetID(), Name: r.Spec.Name, Purpose: r.Spec.Purpose, Classes: r.Spec.Classes(), State: StateBuilding,
		CreatedBy: r.Who.ID, Created: s.cfg.Now(), Location: r.Out, specDigest: SpecDigest(r.SpecYAML)}
	jb.info.secret = s.sealSecret(jb.info.ID, jb.secret)
	jb.unitKey = derive(jb.secret, keyUnits)
	jb.j = &journal{Format: JobFormat, Dataset: jb.info.ID, Spec: jb.info.specDigest, Output: r.Format, UnitSize: r.UnitSize}
	if err := os.MkdirAll(filepath.Join(dir, stageDir), 0o700); err != nil {
		return nil, fmt.Errorf("create dataset: job directory: %w", err)
	}
	if err := s.insertDataset(ctx, jb.info); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := writeJournal(dir, jb.j); err != nil {
		return nil, jb.fail(ctx, fmt.Errorf("write job journal: %w", err))
	}
	return jb, nil
}

// jobSecret is a fresh secret, or the secret of the dataset the spec
// links with: complete and made for the same purpose.
func (s *Service) jobSecret(ctx context.Context, spec *Spec) ([]byte, error) {
	if spec.LinkWith == "" {
		return newSecret(), nil
	}
	prior, err := s.Get(ctx, spec.LinkWith)
	if err != nil {
		return nil, fmt.Errorf("dataset spec: link_with: %w", err)
	}
	switch {
	case prior.State != StateComplete:
		return nil, specErr("link_with %s: that dataset is %s, not complete", prior.ID, prior.State)
	case prior.Purpose != spec.Purpose:
		return nil, specErr("link_with %s: that dataset was made for %s, this one is for %s; datasets of different purposes are never linked", prior.ID, prior.Purpose, spec.Purpose)
	}
	return s.openSecret(prior)
}

func (s *Service) resumeJob(ctx context.Context, r CreateRequest, dir string) (*job, error) {
	raw, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		return nil, fmt.Errorf("resume dataset job in %s: %w (remove the directory to start again)", dir, err)
	}
	j, err := parseJournal(raw)
	if err != nil {
		return nil, fmt.Errorf("resume dataset job in %s: %w (remove the directory to start again)", dir, err)
	}
	info, err := s.Get(ctx, j.Dataset)
	if err != nil {
		return nil, fmt.Errorf("resume dataset job in %s: %w", dir, err)
	}
	if err := checkResume(r, j, info); err != nil {
		return nil, fmt.Errorf("resume dataset job in %s: %w", dir, err)
	}
	secret, err := s.openSecret(info)
	if err != nil {
		return nil, err
	}
	return &job{s: s, req: r, dir: dir, j: j, info: info, secret: secret, unitKey: derive(secret, keyUnits)}, nil
}

func checkResume(r CreateRequest, j *journal, info Info) error {
	switch {
	case info.State != StateBuilding && info.State != StateComplete:
		return fmt.Errorf("dataset %s was %s; remove the job directory to start again", info.ID, info.State)
	case j.Spec != SpecDigest(r.SpecYAML) || info.specDigest != j.Spec:
		return fmt.Errorf("the interrupted job was made from another spec; use the same spec, or remove the job directory to start again: %w", ErrSpec)
	case j.Output != r.Format:
		return fmt.Errorf("the interrupted job writes %s, not %s: %w", j.Output, r.Format, ErrSpec)
	case info.CreatedBy != r.Who.ID:
		return fmt.Errorf("the interrupted job was started by %s; only they can resume it: %w", info.CreatedBy, ErrDenied)
	}
	return nil
}

// reason is what the door's audit events say the reads are for.
func (jb *job) reason() string {
	return fmt.Sprintf("dataset %s (%s)", jb.info.ID, jb.info.Name)
}

func (jb *job) request() records.Request {
	return records.Request{Who: jb.req.Who, Purpose: jb.req.Spec.Purpose}
}

func (jb *job) run(ctx context.Context) (*Created, error) {
	if err := jb.screen(ctx); err != nil {
		return nil, err
	}
	if err := jb.extract(ctx); err != nil {
		return nil, err
	}
	return jb.release(ctx)
}

// screen chooses the cohort through the door, or reads the sealed result
// of an earlier run.
func (jb *job) screen(ctx context.Context) error {
	if jb.j.Cohort != "" {
		if err := jb.loadCohort(); err == nil {
			return nil
		}
	}
	c, err := jb.s.cfg.Door.ResearchCohort(ctx, jb.request(), jb.req.Spec.query(jb.reason()))
	if err != nil {
		return err
	}
	if len(c.Members) == 0 {
		return emptyCohort(c, jb.req.Spec.Purpose)
	}
	jb.cohort = cohortRecord{Candidates: c.Candidates, Members: c.Members, Excluded: len(c.Excluded), Policies: c.Policies, Flags: c.Flags}
	b, err := json.Marshal(jb.cohort)
	if err != nil {
		return err
	}
	if jb.j.Cohort, err = writeSealed(filepath.Join(jb.dir, cohortFile), seal(jb.unitKey, jb.info.ID+" cohort", b)); err != nil {
		return fmt.Errorf("write sealed cohort: %w", err)
	}
	return writeJournal(jb.dir, jb.j)
}

func emptyCohort(c records.ResearchCohort, purpose string) error {
	if c.Candidates == 0 {
		return fmt.Errorf("%w: no patient matches the cohort (departments, classes, codes, dates)", ErrEmptyCohort)
	}
	return fmt.Errorf("%w: none of the %d patients the cohort names may be used for %s (first refusal: %s)",
		ErrEmptyCohort, c.Candidates, purpose, c.Excluded[0].Reason)
}

func (jb *job) loadCohort() error {
	sealed, err := readVerified(filepath.Join(jb.dir, cohortFile), jb.j.Cohort)
	if err != nil {
		return err
	}
	b, err := open(jb.unitKey, jb.info.ID+" cohort", sealed)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &jb.cohort)
}

// fail ends a job that did not finish. An interruption keeps the job
// directory for the next run; anything final (a refusal, an empty cohort,
// a bad spec, a denial) removes it, marks the register and audits.
func (jb *job) fail(ctx context.Context, cause error) error {
	if !final(cause) {
		return fmt.Errorf("%w: %w (run the same command again to resume from %s)", ErrInterrupted, cause, jb.dir)
	}
	state := StateFailed
	if errors.Is(cause, ErrRefused) {
		state = StateRefused
	}
	errs := []error{cause, os.RemoveAll(jb.dir)}
	if err := jb.s.endDataset(context.WithoutCancel(ctx), jb.info.ID, state, cause.Error()); err != nil {
		errs = append(errs, fmt.Errorf("record the dataset as %s: %w", state, err))
	}
	ev := jb.s.event(jb.req.Who.ID, jb.req.Who.Role, "dataset.create", jb.req.Spec.Purpose, jb.info.ID, audit.Failed, state+": "+cause.Error())
	if _, err := jb.s.cfg.Audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// final reports whether a job error cannot be cured by running again.
func final(err error) bool {
	for _, e := range []error{ErrRefused, ErrEmptyCohort, ErrSpec, ErrDenied, records.ErrDenied, records.ErrUnauthenticated,
		records.ErrInvalid, tabular.ErrSpec, tabular.ErrEmpty, tabular.ErrNoSecret} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
