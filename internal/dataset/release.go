package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/store"
)

// released is the de-identified table and what the manifest says of it.
type released struct {
	res      *tabular.Result
	sources  []sourceRow // by input row
	minPats  int         // fewest distinct patients in a class (0 without QIs)
	excluded int         // members left out at the reads
	text     *TextSummary
}

// release de-identifies the whole table, checks it against the spec,
// writes the files and the manifest, records the members and their sealed
// lineage, and renames the dataset into place.
func (jb *job) release(ctx context.Context) (*Created, error) {
	rel, err := jb.deidentify(ctx)
	if err != nil {
		return nil, err
	}
	stage := filepath.Join(jb.dir, stageDir)
	entry, err := WriteTableFile(filepath.Join(stage, DataFile(jb.j.Output)), jb.j.Output, rel.res.Table)
	if err != nil {
		return nil, err
	}
	lin := buildLineage(jb.info.ID, rel)
	m, err := jb.manifest(rel, entry, lin)
	if err != nil {
		return nil, err
	}
	digest, err := jb.writeManifest(stage, m)
	if err != nil {
		return nil, err
	}
	if err := jb.register(ctx, rel, lin, m, digest); err != nil {
		return nil, err
	}
	return jb.finish(ctx)
}

// deidentify assembles the units into one table and runs the tabular
// engine on it; a result that does not meet the spec is refused.
func (jb *job) deidentify(ctx context.Context) (*released, error) {
	units, err := jb.loadUnits()
	if err != nil {
		return nil, err
	}
	rel := &released{}
	t := &tabular.Table{Columns: jb.req.Spec.columns()}
	for _, u := range units {
		rel.excluded += u.Excluded
		for _, r := range u.Rows {
			t.Rows = append(t.Rows, r.Cells)
			rel.sources = append(rel.sources, r)
		}
		rel.addText(jb.req.Spec, u)
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("%w: the cohort's %d patients have no records the spec names", ErrEmptyCohort, len(jb.cohort.Members))
	}
	p := jb.req.Progress
	p.Start("de-identify", 0)
	rel.res, err = tabular.Anonymize(ctx, t, jb.req.Spec.deidSpec(), jb.secret)
	p.Finish()
	if err != nil {
		return nil, refusal(err)
	}
	if err := jb.checkPatients(rel); err != nil {
		return nil, err
	}
	return rel, nil
}

func (rel *released) addText(spec *Spec, u unitData) {
	if spec.FreeText == nil {
		return
	}
	if rel.text == nil {
		mode := spec.FreeText.Mode
		if mode == "" {
			mode = TextSurrogates
		}
		rel.text = &TextSummary{Mode: mode, Columns: spec.FreeText.Columns, Findings: map[string]int{}}
	}
	rel.text.Cells += u.TextCells
	for k, n := range u.Findings {
		rel.text.Findings[k] += n
	}
}

// refusal turns the engine's verdicts on the data into ErrRefused; other
// errors (a value a hierarchy cannot read, a cancellation) pass as they
// are.
func refusal(err error) error {
	if errors.Is(err, tabular.ErrUnreachable) || errors.Is(err, tabular.ErrRiskTooHigh) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// checkPatients makes k and the risk limit hold per patient, not only per
// row: with a row per record, one patient's several records could fill a
// class alone. Rows of classes with fewer than k distinct patients are
// suppressed as well, within what the spec's suppression limit leaves;
// beyond it the dataset is refused.
func (jb *job) checkPatients(rel *released) error {
	d := jb.req.Spec.deidSpec()
	res := rel.res
	if len(d.QuasiIdentifiers) == 0 || len(res.Table.Rows) == 0 {
		return nil
	}
	k := max(d.K, 1)
	classes := patientClasses(rel, d.QuasiIdentifiers)
	short := 0
	for _, c := range classes {
		if len(c.patients) < k {
			short += len(c.rows)
		}
	}
	if limit := int(d.MaxSuppression * float64(res.Records)); res.Suppressed+short > limit {
		return fmt.Errorf("%w: every class has at least %d rows, but classes holding %d rows have fewer than k = %d distinct patients "+
			"(with a row per record one patient can fill a class alone), and suppressing them would exceed the limit of %d rows: "+
			"use rows: patient, coarser quasi-identifiers or a higher max_suppression", ErrRefused, res.Reached.K, short, k, limit)
	}
	if short > 0 {
		if err := rel.suppressShort(classes, k, d); err != nil {
			return err
		}
	}
	rel.minPats = math.MaxInt
	for _, c := range classes {
		if len(c.patients) >= k {
			rel.minPats = min(rel.minPats, len(c.patients))
		}
	}
	if r := 1 / float64(rel.minPats); r > d.MaxRisk {
		return fmt.Errorf("%w: the highest per-patient prosecutor risk %.3f is above the limit %.3f", ErrRefused, r, d.MaxRisk)
	}
	return nil
}

// patientClass is one equivalence class of the released rows.
type patientClass struct {
	rows     []int
	patients map[string]bool
}

func patientClasses(rel *released, qis []tabular.QI) map[string]*patientClass {
	t := rel.res.Table
	idx := make([]int, len(qis))
	for i, q := range qis {
		idx[i] = tableIndex(t, q.Column)
	}
	classes := map[string]*patientClass{}
	for r, row := range t.Rows {
		var key strings.Builder
		for _, i := range idx {
			key.WriteString(row[i])
			key.WriteByte(0)
		}
		c, ok := classes[key.String()]
		if !ok {
			c = &patientClass{patients: map[string]bool{}}
			classes[key.String()] = c
		}
		c.rows = append(c.rows, r)
		c.patients[rel.sources[rel.res.RowSource[r]].Patient] = true
	}
	return classes
}

// suppressShort removes the rows of classes with fewer than k patients and
// measures the risk of what is left again.
func (rel *released) suppressShort(classes map[string]*patientClass, k int, d tabular.Spec) error {
	res := rel.res
	drop := make([]bool, len(res.Table.Rows))
	n := 0
	for _, c := range classes {
		if len(c.patients) < k {
			for _, r := range c.rows {
				drop[r] = true
				n++
			}
		}
	}
	var rows [][]string
	var source []int
	for r, row := range res.Table.Rows {
		if !drop[r] {
			rows, source = append(rows, row), append(source, res.RowSource[r])
		}
	}
	res.Table.Rows, res.RowSource = rows, source
	res.Suppressed += n
	res.Explanation = append(res.Explanation, fmt.Sprintf("suppressed %d more records in classes with fewer than k=%d distinct patients", n, k))
	if len(rows) == 0 {
		return fmt.Errorf("%w: no row is left once classes with fewer than k = %d patients are suppressed", ErrRefused, k)
	}
	qis := make([]string, len(d.QuasiIdentifiers))
	for i, q := range d.QuasiIdentifiers {
		qis[i] = q.Column
	}
	risk, err := tabular.MeasureRisk(res.Table, qis, tabular.RiskOptions{Threshold: d.RiskThreshold})
	if err != nil {
		return err
	}
	res.Risk, res.Reached.K = risk, int(math.Round(1/risk.ProsecutorMax))
	if risk.ProsecutorMax > d.MaxRisk {
		return fmt.Errorf("%w: %w", ErrRefused, &tabular.RiskError{Risk: risk, Limit: d.MaxRisk})
	}
	return nil
}

// lineage is one patient's lineage in a dataset, as sealed with their key.
type lineage struct {
	Dataset string       `json:"dataset"`
	Patient string       `json:"patient"` // internal id
	Rows    []lineageRow `json:"rows"`
}

type lineageRow struct {
	Row     int      `json:"row"` // 0-based position in the data file
	Records []string `json:"records"`
}

// datasetLineage is every member's lineage and the digest the manifest
// commits to.
type datasetLineage struct {
	byPatient map[string]*lineage
	order     []string // patients in first-row order
	rowMap    []string // patient of each output row
	digest    string
}

func buildLineage(id string, rel *released) datasetLineage {
	dl := datasetLineage{byPatient: map[string]*lineage{}}
	h := sha256.New()
	for row, src := range rel.res.RowSource {
		s := rel.sources[src]
		l, ok := dl.byPatient[s.Patient]
		if !ok {
			l = &lineage{Dataset: id, Patient: s.Patient}
			dl.byPatient[s.Patient] = l
			dl.order = append(dl.order, s.Patient)
		}
		l.Rows = append(l.Rows, lineageRow{Row: row, Records: s.Records})
		dl.rowMap = append(dl.rowMap, s.Patient)
		fmt.Fprintf(h, "%d\t%s\t%s\n", row, s.Patient, strings.Join(s.Records, ","))
	}
	dl.digest = hex.EncodeToString(h.Sum(nil))
	return dl
}

func (jb *job) manifest(rel *released, entry FileEntry, lin datasetLineage) (*Manifest, error) {
	pd, err := policyDigest(jb.s.cfg.Policies)
	if err != nil {
		return nil, err
	}
	spec, res := jb.req.Spec, rel.res
	d := spec.deidSpec()
	m := &Manifest{
		Format: ManifestFormat,
		Dataset: ManifestHead{ID: jb.info.ID, Name: spec.Name, Description: spec.Description, Purpose: spec.Purpose,
			Hospital: jb.s.cfg.HospitalID, CreatedBy: jb.info.CreatedBy, Created: jb.info.Created.UTC(), Format: jb.j.Output,
			Rows: len(res.Table.Rows), Columns: res.Table.Columns, LinkedWith: spec.LinkWith},
		Spec:   ManifestSpec{SHA256: jb.info.specDigest, YAML: string(jb.req.SpecYAML)},
		Policy: ManifestPolicy{SHA256: pd, Decided: jb.cohort.Policies, Flags: jb.cohort.Flags},
		Code:   codeVersion(),
		Cohort: CohortCounts{Candidates: jb.cohort.Candidates, Consented: len(jb.cohort.Members) - rel.excluded,
			Excluded: jb.cohort.Excluded + rel.excluded, RowsBefore: res.Records, Suppressed: res.Suppressed,
			Rows: len(res.Table.Rows), Patients: len(lin.order)},
		Privacy: privacyOf(d, res, rel.minPats),
		Risk:    riskOf(d, res.Risk, rel.minPats),
		Text:    rel.text,
		Files:   []FileEntry{entry},
		Lineage: LineageNote{Kept: "inside the hospital: each member's lineage sealed with their data key, opened only by the security officer (audited)",
			Members: len(lin.order), SHA256: lin.digest},
	}
	return m, nil
}

func privacyOf(d tabular.Spec, res *tabular.Result, minPats int) Privacy {
	r, l := res.Reached, res.Loss
	p := Privacy{Model: modelName(d), K: max(d.K, 1), L: d.L, T: d.T, MaxSuppression: d.MaxSuppression,
		Reached:             Reached{K: r.K, L: r.L, EntropyL: r.EntropyL, T: r.T},
		PatientsPerClassMin: minPats, Explanation: res.Explanation,
		Loss: Loss{Discernibility: l.Discernibility, AvgClassSize: l.AvgClassSize, CAvg: l.CAvg, NonUniformEntropy: l.NonUniformEntropy,
			EntropyShare: l.EntropyShare, Height: l.Height, Precision: l.Precision}}
	for _, lv := range res.Levels {
		p.Levels = append(p.Levels, Level{Column: lv.Column, Level: lv.Level, Height: lv.Height, Example: lv.Example})
	}
	if d.L > 0 {
		p.LMode = string(d.LMode)
		if p.LMode == "" {
			p.LMode = string(tabular.LDistinct)
		}
	}
	return p
}

func modelName(d tabular.Spec) string {
	if len(d.QuasiIdentifiers) == 0 {
		return "none (no quasi-identifiers)"
	}
	parts := []string{"k-anonymity"}
	if d.L > 0 {
		parts = append(parts, "l-diversity")
	}
	if d.T > 0 {
		parts = append(parts, "t-closeness")
	}
	return strings.Join(parts, ", ")
}

func riskOf(d tabular.Spec, r tabular.Risk, minPats int) RiskFigures {
	f := RiskFigures{Limit: d.MaxRisk, ProsecutorMax: r.ProsecutorMax, ProsecutorAvg: r.ProsecutorAvg, JournalistMax: r.JournalistMax,
		JournalistAvg: r.JournalistAvg, Marketer: r.Marketer, Threshold: r.Threshold, AtRisk: r.AtRisk}
	if minPats > 0 {
		f.PatientMax = 1 / float64(minPats)
	}
	return f
}

// writeManifest writes manifest.json and manifest.sig into dir and returns
// the manifest's digest.
func (jb *job) writeManifest(dir string, m *Manifest) (string, error) {
	b, err := m.Encode()
	if err != nil {
		return "", err
	}
	sig, err := jb.s.signer.sign(b)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, ManifestFile), b); err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, SignatureFile), sig); err != nil {
		return "", fmt.Errorf("write manifest signature: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// register seals each member's lineage with their data key and records the
// members and the finished dataset in one transaction.
func (jb *job) register(ctx context.Context, rel *released, lin datasetLineage, m *Manifest, digest string) error {
	ms, err := jb.members(ctx, rel, lin)
	if err != nil {
		return err
	}
	rowMap, err := jb.sealRowMap(ctx, lin)
	if err != nil {
		return err
	}
	s := jb.s
	return s.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := insertMembers(ctx, tx, jb.info.ID, ms); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE datasets SET state = ?, completed_at = ?, row_map = ?, rows_count = ?, patients = ?, k_reached = ?, manifest_digest = ? WHERE id = ? AND state = ?`,
			StateComplete, s.cfg.Now().UnixNano(), rowMap, m.Cohort.Rows, m.Cohort.Patients, m.Privacy.Reached.K, digest, jb.info.ID, StateBuilding)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("dataset %s is no longer being built", jb.info.ID)
		}
		reason := fmt.Sprintf("%d rows of %d patients (%d candidates, %d excluded); %s reached k=%d; prosecutor risk max %.3f, per patient %.3f; manifest sha256 %s",
			m.Cohort.Rows, m.Cohort.Patients, m.Cohort.Candidates, m.Cohort.Excluded, m.Privacy.Model, m.Privacy.Reached.K, m.Risk.ProsecutorMax, m.Risk.PatientMax, digest)
		if m.Dataset.LinkedWith != "" {
			reason += "; pseudonyms linkable with " + m.Dataset.LinkedWith
		}
		_, err = s.cfg.Audit.AppendTx(ctx, tx, s.event(jb.req.Who.ID, jb.req.Who.Role, "dataset.create", jb.req.Spec.Purpose, jb.info.ID, audit.Success, reason))
		return err
	})
}

func (jb *job) members(ctx context.Context, rel *released, lin datasetLineage) ([]member, error) {
	pseudo := pseudonymColumn(jb.req.Spec, rel.res.Table)
	idxKey := derive(jb.secret, keyIndex)
	pseud := map[string]string{}
	for _, m := range jb.cohort.Members {
		pseud[m.ID] = m.Pseudonym
	}
	out := make([]member, 0, len(lin.order))
	for _, pid := range lin.order {
		l := lin.byPatient[pid]
		raw, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		sealed, err := jb.s.cfg.Door.SealLineage(ctx, pid, jb.info.ID, raw)
		if err != nil {
			return nil, fmt.Errorf("seal lineage of %s: %w", pseud[pid], err)
		}
		m := member{patient: pseud[pid], rows: len(l.Rows), lineage: sealed, index: []byte{}}
		if pseudo >= 0 {
			m.index = mac(idxKey, rel.res.Table.Rows[l.Rows[0].Row][pseudo])
		}
		out = append(out, m)
	}
	return out, nil
}

// pseudonymColumn is the output column that holds the row's patient
// pseudonym: the first pseudonymized field drawn from the patient (-1 when
// none is).
func pseudonymColumn(spec *Spec, t *tabular.Table) int {
	for _, f := range spec.Fields {
		if strings.HasPrefix(f.From, "patient.") && slices.Contains(spec.Deid.Pseudonymize, f.Name) {
			return tableIndex(t, f.Name)
		}
	}
	return -1
}

func (jb *job) sealRowMap(ctx context.Context, lin datasetLineage) ([]byte, error) {
	pseud := map[string]string{}
	for _, m := range jb.cohort.Members {
		pseud[m.ID] = m.Pseudonym
	}
	rows := make([]string, len(lin.rowMap))
	for i, pid := range lin.rowMap {
		rows[i] = pseud[pid]
	}
	raw, err := json.Marshal(rows)
	if err != nil {
		return nil, err
	}
	return seal(derive(jb.s.secretsKey, keyRowMap), "rowmap "+jb.info.ID, raw), nil
}

// finish renames the staged dataset into place (also after a crash
// between registering and renaming) and removes the job directory.
func (jb *job) finish(ctx context.Context) (*Created, error) {
	info, err := jb.s.Get(ctx, jb.info.ID)
	if err != nil {
		return nil, err
	}
	stage := filepath.Join(jb.dir, stageDir)
	b, err := os.ReadFile(filepath.Join(stage, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("finish dataset %s: %w", info.ID, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != info.ManifestSHA256 {
		return nil, fmt.Errorf("finish dataset %s: the staged manifest is not the one registered: %w", info.ID, ErrTampered)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(stage, jb.req.Out); err != nil {
		return nil, fmt.Errorf("finish dataset %s: %w", info.ID, err)
	}
	if err := syncDir(filepath.Dir(jb.req.Out)); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(jb.dir); err != nil {
		return nil, err
	}
	return &Created{Info: info, Manifest: m, Dir: jb.req.Out, ResumedUnits: jb.resumed}, nil
}
