package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/medsec/medsec/internal/dataset"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/records"
)

// The AI use of the data (issue 6): a research cohort registers and
// consents at the desk, the researcher builds a consented, de-identified,
// signed dataset from it through the one door, the manifest verifies and
// catches a one-byte change, and a member's withdrawal makes the dataset
// stale in the register and on the data map.

// DatasetReport is the dataset the demo builds.
type DatasetReport struct {
	ID         string  `json:"id"`
	Dir        string  `json:"dir,omitempty"`
	Candidates int     `json:"candidates"`
	Consented  int     `json:"consented"`
	Rows       int     `json:"rows"`
	Patients   int     `json:"patients"`
	K          int     `json:"k"`
	Risk       float64 `json:"prosecutor_risk_max"`
	RiskLimit  float64 `json:"risk_limit"`
	// ManifestVerified: the signature and every file's hash check out.
	ManifestVerified bool `json:"manifest_verified"`
	// TamperDetected: a one-byte change of the data file is refused.
	TamperDetected bool `json:"tamper_detected"`
	// StaleAfterWithdrawal: once a member withdrew consent, `dataset list
	// --stale` names the dataset, and the member's data map marks it.
	StaleAfterWithdrawal bool `json:"stale_after_withdrawal"`
	TracedStale          bool `json:"traced_stale"`
}

// demoAdmissions is the research cohort's size: large enough for k = 5
// with useful detail, small enough for the demo's time budget.
const demoAdmissions = 240

func (s *scenario) buildDataset(ctx context.Context) error {
	ps, err := dataset.SyntheticCohort(ctx, s.h.Door, s.staff["reception"], s.staff["dr.kim"], demoAdmissions, s.opt.Seed, 0.8)
	if err != nil {
		return err
	}
	// The cohort's phone numbers join the final plaintext search (their
	// names are left out: surrogate names in the redacted notes are drawn
	// from the same syllables and could match by chance).
	for _, p := range ps {
		s.extraNeedles = append(s.extraNeedles, []byte(p.Phone), []byte(strings.ReplaceAll(p.Phone, "-", "")))
	}
	svc, err := dataset.New(ctx, dataset.Config{DB: s.h.DB, Door: s.h.Door, Keys: s.h.Keys, Audit: s.h.Audit, Alerts: s.h.Alerts,
		HospitalID: s.h.Config.Hospital.ID, Operator: "demo"})
	if err != nil {
		return err
	}
	c, err := s.createDataset(ctx, svc)
	if err != nil {
		return err
	}
	m := c.Manifest
	s.rep.Dataset = DatasetReport{ID: c.Info.ID, Dir: c.Dir, Candidates: m.Cohort.Candidates, Consented: m.Cohort.Consented,
		Rows: m.Cohort.Rows, Patients: m.Cohort.Patients, K: m.Privacy.Reached.K, Risk: m.Risk.ProsecutorMax, RiskLimit: m.Risk.Limit}
	s.opt.Log("researcher Choi built dataset %s for %s through the door: %d candidates, %d consented, %d rows of %d patients; k=%d reached, prosecutor risk %.3f (limit %.2f); notes redacted",
		c.Info.ID, m.Dataset.Purpose, m.Cohort.Candidates, m.Cohort.Consented, m.Cohort.Rows, m.Cohort.Patients, m.Privacy.Reached.K, m.Risk.ProsecutorMax, m.Risk.Limit)
	if err := s.checkDataset(ctx, svc, c); err != nil {
		return err
	}
	return s.withdrawFromDataset(ctx, svc, c, ps)
}

// createDataset builds the demo's dataset in the data directory (kept with
// --data, so `medsec dataset verify` can check it afterwards). Notes are
// redacted with type tags, so no surrogate can look like a real name.
func (s *scenario) createDataset(ctx context.Context, svc *dataset.Service) (*dataset.Created, error) {
	text := strings.Replace(dataset.SyntheticSpec(5), "  columns: [summary]\n", "  columns: [summary]\n  mode: tags\n", 1)
	spec, err := dataset.ParseSpec([]byte(text), nil, ".")
	if err != nil {
		return nil, err
	}
	out := filepath.Join(s.opt.Dir, "datasets", "synthetic-admissions")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return nil, err
	}
	return svc.Create(ctx, dataset.CreateRequest{Who: s.staff["researcher.choi"], Spec: spec, SpecYAML: []byte(text), Out: out, Format: dataset.FormatParquet})
}

// checkDataset verifies the dataset, then changes one byte of its data file
// (in memory) and expects the verification to name it.
func (s *scenario) checkDataset(ctx context.Context, svc *dataset.Service, c *dataset.Created) error {
	if _, err := svc.Verify(ctx, c.Dir); err != nil {
		return err
	}
	s.rep.Dataset.ManifestVerified = true
	fsys := fstest.MapFS{}
	for _, name := range []string{dataset.ManifestFile, dataset.SignatureFile, c.Manifest.Files[0].Name} {
		b, err := os.ReadFile(filepath.Join(c.Dir, name))
		if err != nil {
			return err
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	data := fsys[c.Manifest.Files[0].Name].Data
	data[len(data)/2] ^= 1
	_, err := dataset.VerifyFS(fsys, c.Dir, svc.Signer().VerifierKey())
	var ve *dataset.VerifyError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: a changed data file verified (%v)", errStep, err)
	}
	s.rep.Dataset.TamperDetected = true
	s.opt.Log("the signed manifest verifies; one changed byte is caught: %s", ve.Problems[0])
	return nil
}

// withdrawFromDataset: a member withdraws consent at the desk; the dataset
// is then stale in the register and on the member's data map.
func (s *scenario) withdrawFromDataset(ctx context.Context, svc *dataset.Service, c *dataset.Created, ps []dataset.SyntheticPatient) error {
	officer := records.Request{Who: s.staff["officer.han"], Purpose: lifecycle.PurposeOperations}
	r, err := svc.Reidentify(ctx, officer, c.Info.ID, dataset.Target{Row: 0, ByRow: true}, "demo: which patient is row 1")
	if err != nil {
		return err
	}
	var member dataset.SyntheticPatient
	for _, p := range ps {
		if p.ID == r.PatientID {
			member = p
		}
	}
	if _, err := s.h.Door.WithdrawConsent(ctx, records.Request{Who: s.staff["reception"], Purpose: "HOPERAT"}, member.Consent, "no longer wants to take part"); err != nil {
		return err
	}
	stale, err := svc.List(ctx, true)
	if err != nil {
		return err
	}
	s.rep.Dataset.StaleAfterWithdrawal = len(stale) == 1 && stale[0].ID == c.Info.ID && len(stale[0].Stale) == 1
	if err := s.traceStale(ctx, svc, member, officer); err != nil {
		return err
	}
	s.opt.Log("the officer re-identified row 1 (audited) as %s; after that patient withdrew consent, `dataset list --stale` names %s and the data map marks it STALE",
		member.Pseudonym, c.Info.ID)
	return nil
}

func (s *scenario) traceStale(ctx context.Context, svc *dataset.Service, p dataset.SyntheticPatient, officer records.Request) error {
	if s.life == nil {
		return nil
	}
	s.life.engine.AddSource(svc)
	m, err := s.life.engine.Trace(ctx, officer, p.ID)
	if err != nil {
		return err
	}
	for _, l := range m.Locations {
		if l.Kind == lifecycle.KindDataset && strings.Contains(l.State, "STALE") {
			s.rep.Dataset.TracedStale = true
		}
	}
	return nil
}
