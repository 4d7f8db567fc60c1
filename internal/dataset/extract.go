package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/deid/text"
)

// unitData is one unit of patients as sealed in the job directory: their
// rows before de-identification (free text already redacted).
type unitData struct {
	Rows []sourceRow `json:"rows"`
	// Excluded counts members the door left out at the read (consent
	// withdrawn or erased since the screening).
	Excluded  int            `json:"excluded"`
	TextCells int            `json:"text_cells"`
	Findings  map[string]int `json:"findings,omitempty"`
}

func (jb *job) units() int {
	n := len(jb.cohort.Members)
	return (n + jb.j.UnitSize - 1) / jb.j.UnitSize
}

func (jb *job) unitIDs(i int) []string {
	ms := jb.cohort.Members[i*jb.j.UnitSize : min((i+1)*jb.j.UnitSize, len(jb.cohort.Members))]
	ids := make([]string, len(ms))
	for k, m := range ms {
		ids[k] = m.ID
	}
	return ids
}

func (jb *job) unitAAD(i int) string { return fmt.Sprintf("%s unit %d", jb.info.ID, i) }

// extract reads every unit not yet done (by a verified journal entry)
// through the door and seals it into the job directory.
func (jb *job) extract(ctx context.Context) error {
	p := jb.req.Progress
	p.Start("patients", int64(len(jb.cohort.Members)))
	defer p.Finish()
	for i := range jb.units() {
		ids := jb.unitIDs(i)
		if jb.unitDone(i) {
			jb.resumed++
			p.Add(int64(len(ids)))
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := jb.extractUnit(ctx, i, ids); err != nil {
			return fmt.Errorf("unit %d of %d: %w", i+1, jb.units(), err)
		}
		p.Add(int64(len(ids)))
	}
	return nil
}

// unitDone reports whether unit i is in the journal and its file still
// matches the recorded hash; a damaged unit is dropped and redone.
func (jb *job) unitDone(i int) bool {
	u, ok := jb.j.unit(i)
	if !ok {
		return false
	}
	if _, err := readVerified(filepath.Join(jb.dir, unitFile(i)), u.SHA256); err != nil {
		jb.j.dropUnit(i)
		return false
	}
	return true
}

func (jb *job) extractUnit(ctx context.Context, i int, ids []string) error {
	b, err := jb.s.cfg.Door.ResearchRead(ctx, jb.request(), jb.req.Spec.query(jb.reason()), ids)
	if err != nil {
		return err
	}
	u := unitData{Excluded: len(b.Excluded)}
	for _, x := range b.Extracts {
		u.Rows = append(u.Rows, jb.req.Spec.rowsOf(x, jb.s.cfg.Now())...)
	}
	if err := jb.redact(&u); err != nil {
		return err
	}
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	sum, err := writeSealed(filepath.Join(jb.dir, unitFile(i)), seal(jb.unitKey, jb.unitAAD(i), raw))
	if err != nil {
		return fmt.Errorf("write sealed unit: %w", err)
	}
	jb.j.dropUnit(i)
	jb.j.Units = append(jb.j.Units, unitEntry{Index: i, SHA256: sum, Rows: len(u.Rows)})
	return writeJournal(jb.dir, jb.j)
}

// redact replaces the free-text cells of the unit's rows with their
// redaction. Surrogates are keyed by the dataset's text secret, so the
// same person gets the same surrogate across the whole dataset; dates in
// a patient's notes move by that patient's date shift when the spec shifts
// dates, so notes stay in line with the table.
func (jb *job) redact(u *unitData) error {
	spec := jb.req.Spec
	if spec.FreeText == nil || len(spec.FreeText.Columns) == 0 {
		return nil
	}
	var cols []int
	for i, f := range spec.Fields {
		if slices.Contains(spec.FreeText.Columns, f.Name) {
			cols = append(cols, i)
		}
	}
	shift, err := jb.shifter()
	if err != nil {
		return err
	}
	u.Findings = map[string]int{}
	reds := map[int]*text.Redactor{}
	for r := range u.Rows {
		row := &u.Rows[r]
		days := shift(row.Cells)
		red, ok := reds[days]
		if !ok {
			red = jb.redactor(days)
			reds[days] = red
		}
		for _, c := range cols {
			out, found := red.Redact(row.Cells[c])
			row.Cells[c] = out
			u.TextCells++
			for _, f := range found {
				u.Findings[string(f.Kind)]++
			}
		}
	}
	return nil
}

func (jb *job) redactor(days int) *text.Redactor {
	ft := jb.req.Spec.FreeText
	opt := text.Options{Mode: text.Surrogates, Secret: derive(jb.secret, keyText), MinConfidence: ft.MinConfidence, DateShiftDays: days}
	if ft.Mode == TextTags {
		opt.Mode = text.Tags
	}
	return text.NewRedactor(opt)
}

// shifter returns the date shift of a row's patient (0 when the spec does
// not shift dates: the redactor then derives one shift from its secret).
func (jb *job) shifter() (func(cells []string) int, error) {
	ds := jb.req.Spec.Deid.DateShift
	if ds == nil {
		return func([]string) int { return 0 }, nil
	}
	p, err := tabular.NewPseudonymizer(jb.secret)
	if err != nil {
		return nil, err
	}
	col := tableIndex(&tabular.Table{Columns: jb.req.Spec.columns()}, ds.PatientColumn)
	maxDays := ds.MaxDays
	if maxDays == 0 {
		maxDays = 365
	}
	return func(cells []string) int {
		if col < 0 || cells[col] == "" {
			return 0
		}
		return p.ShiftDays(cells[col], maxDays)
	}, nil
}

// loadUnits opens every unit of the job, checked against the journal.
func (jb *job) loadUnits() ([]unitData, error) {
	out := make([]unitData, 0, jb.units())
	for i := range jb.units() {
		e, ok := jb.j.unit(i)
		if !ok {
			return nil, fmt.Errorf("unit %d is not done", i+1)
		}
		sealed, err := readVerified(filepath.Join(jb.dir, unitFile(i)), e.SHA256)
		if err != nil {
			return nil, err
		}
		raw, err := open(jb.unitKey, jb.unitAAD(i), sealed)
		if err != nil {
			return nil, fmt.Errorf("unit %d: %w", i+1, err)
		}
		var u unitData
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, fmt.Errorf("unit %d: %w", i+1, err)
		}
		out = append(out, u)
	}
	return out, nil
}
