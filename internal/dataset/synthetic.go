package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/deid/tabular"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
)

// SyntheticPatient is one patient SyntheticCohort registered, with the
// identifying values a test searches the output for.
type SyntheticPatient struct {
	ID, Pseudonym string
	Name, Phone   string
	Admissions    int
	// Consent is the id of the patient's MLTRAINING consent ("" when the
	// patient gave none).
	Consent string
}

// SyntheticCohort registers invented inpatients through the door, for the
// demo, tests and benchmarks: tabular.SyntheticHospital's admissions
// (age, sex, address, department, ICD-10 diagnosis, length of stay),
// each patient registered by clerk and attended by doctor, each admission
// an encounter record whose summary carries the patient's name, phone
// number and dates in free text. consentShare of the patients (by a hash
// of their number, so the same seed gives the same cohort) consent to
// research and model training. No value describes a real person.
func SyntheticCohort(ctx context.Context, door *records.Door, clerk, doctor identity.Principal, admissions int, seed uint64, consentShare float64) ([]SyntheticPatient, error) {
	t := tabular.SyntheticHospital(admissions, seed)
	col := func(name string) int { return tableIndex(t, name) }
	byID := map[string]int{}
	var out []SyntheticPatient
	for _, row := range t.Rows {
		i, ok := byID[row[col("patient_id")]]
		if !ok {
			p, err := registerSynthetic(ctx, door, clerk, doctor, row, col, consentShare)
			if err != nil {
				return nil, err
			}
			i = len(out)
			byID[row[col("patient_id")]] = i
			out = append(out, p)
		}
		if err := admitSynthetic(ctx, door, doctor, out[i], row, col); err != nil {
			return nil, err
		}
		out[i].Admissions++
	}
	return out, nil
}

func registerSynthetic(ctx context.Context, door *records.Door, clerk, doctor identity.Principal, row []string, col func(string) int, consentShare float64) (SyntheticPatient, error) {
	num := row[col("patient_id")]
	h := hashOf(num)
	admitted, _ := time.Parse(time.DateOnly, row[col("admission_date")])
	age, _ := strconv.Atoi(row[col("age")])
	birth := admitted.AddDate(-age, 0, -int(h%300))
	sex := map[string]string{"M": "male", "F": "female"}[row[col("sex")]]
	in := records.Patient{Name: row[col("name")], MRN: "MRN-" + num, Phone: fmt.Sprintf("010-%04d-%04d", 1000+h%9000, (h/9000)%10000),
		BirthDate: birth.Format(time.DateOnly), Sex: sex, Address: row[col("address")],
		Department: departmentCode(row[col("department")]), Attending: doctor.ID, CareTeam: []string{doctor.ID}}
	p, err := door.RegisterPatient(ctx, records.Request{Who: clerk, Purpose: "TREAT"}, in)
	if err != nil {
		return SyntheticPatient{}, fmt.Errorf("register synthetic patient: %w", err)
	}
	sp := SyntheticPatient{ID: p.ID, Pseudonym: p.Pseudonym, Name: in.Name, Phone: in.Phone}
	if float64(h%1000)/1000 >= consentShare {
		return sp, nil
	}
	c, err := door.RecordConsent(ctx, records.Request{Who: clerk, Purpose: "HOPERAT"}, p.ID,
		records.Consent{Purpose: PurposeTraining, Permit: true, From: admitted.AddDate(-1, 0, 0), FormRef: "research consent form " + num})
	if err != nil {
		return SyntheticPatient{}, fmt.Errorf("record synthetic consent: %w", err)
	}
	sp.Consent = c.ID
	return sp, nil
}

func hashOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// departmentCode turns "Internal Medicine" into internal_medicine, the
// door's department names.
func departmentCode(name string) string {
	return strings.ToLower(strings.NewReplacer(" and ", "_", " ", "_").Replace(name))
}

func admitSynthetic(ctx context.Context, door *records.Door, doctor identity.Principal, p SyntheticPatient, row []string, col func(string) int) error {
	admitted, _ := time.Parse(time.DateOnly, row[col("admission_date")])
	stay := row[col("length_of_stay")]
	summary := fmt.Sprintf("%s (MRN %s) admitted %s to %s with %s. Contact: %s. Discharged %s after %s days; follow-up with Dr. Kim.",
		p.Name, "MRN-"+row[col("patient_id")], admitted.Format(time.DateOnly), row[col("department")], row[col("diagnosis")], p.Phone,
		row[col("discharge_date")], stay)
	enc := map[string]any{"resourceType": "Encounter", "status": "finished", "department": row[col("department")],
		"period":         map[string]string{"start": row[col("admission_date")], "end": row[col("discharge_date")]},
		"length_of_stay": json.Number(stay), "insurance": row[col("insurance")], "summary": summary}
	payload, err := json.Marshal(enc)
	if err != nil {
		return err
	}
	rec := records.Record{Class: records.ClassEncounter, Code: row[col("diagnosis")], Effective: admitted, Source: "staff:" + doctor.Username, Payload: payload}
	if _, err := door.AddRecords(ctx, records.Request{Who: doctor, Purpose: "TREAT"}, p.ID, []records.Record{rec}); err != nil {
		return fmt.Errorf("admit synthetic patient: %w", err)
	}
	return nil
}

// SyntheticSpec is a dataset spec for SyntheticCohort's patients: one row
// per patient with their latest admission's age, sex, district, date,
// diagnosis and length of stay as quasi-identifiers (k-anonymity with k,
// at most 5 % suppressed), their number of admissions, the patient
// pseudonymized and the admission summary redacted with surrogates.
func SyntheticSpec(k int) string {
	return fmt.Sprintf(`name: synthetic-admissions
description: Admissions of the synthetic hospital, for a length-of-stay model.
purpose: MLTRAINING
cohort:
  classes: [encounter]
rows: patient
fields:
  - {name: patient, from: patient.id}
  - {name: age, from: patient.age}
  - {name: sex, from: patient.sex}
  - {name: district, from: patient.address}
  - {name: admitted, from: record.effective}
  - {name: diagnosis, from: record.code}
  - {name: length_of_stay, from: record.payload.length_of_stay}
  - {name: admissions, from: count.encounter}
  - {name: summary, from: record.payload.summary}
free_text:
  columns: [summary]
deid:
  quasi_identifiers:
    - {column: age, hierarchy: age}
    - {column: sex, hierarchy: sex}
    - {column: district, hierarchy: district}
    - {column: admitted, hierarchy: date}
    - {column: diagnosis, hierarchy: icd10}
    - {column: length_of_stay, hierarchy: interval(7)}
  k: %d
  max_suppression: 0.05
  pseudonymize: [patient]
  keep: [admissions]
`, k)
}
