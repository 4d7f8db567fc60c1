// Package dataset builds datasets for medical AI that can be trusted: made
// only of patients who consented to the purpose, de-identified to a
// measured re-identification risk, and traceable to their sources inside
// the hospital. It is `medsec dataset create|verify|list|reidentify`.
//
// It serves the paper's anonymization and de-identification technology at
// location 9 (nothing a dataset shows may single out a patient) and the
// paper's aim of reliable medical AI, and DESIGN rule 4 (lineage): every
// output row knows its source records, and when a patient withdraws
// consent or is erased the hospital knows which datasets to rebuild.
//
// A dataset is made in four steps. The cohort is chosen through the one
// door (records.Door.ResearchCohort) as a researcher, for research (HRESCH)
// or model training (MLTRAINING): the policy keeps only patients whose
// consent permits that purpose. Their data is read through the door in
// units of a few hundred patients, fields are taken out, free text is
// redacted, and each unit is sealed into a job directory with a journal, so
// an interrupted job resumes where it stopped. The whole table is then
// de-identified (internal/deid/tabular: pseudonyms, date shifts,
// generalization to k-anonymity, l-diversity or t-closeness with a
// suppression limit) and its risk measured; a risk above the spec's limit
// refuses the dataset and names the quasi-identifiers that drive it.
// Finally the data (Parquet, CSV or NDJSON) and a signed manifest are
// written and the job directory is renamed into place, so a failed job
// leaves no half-written dataset.
//
// The lineage from each row's pseudonym to its source records stays in the
// hospital, sealed with each patient's data key (crypto-shredding a patient
// destroys it too); only the security officer can open it, through a
// decided and audited read of the door.
package dataset
