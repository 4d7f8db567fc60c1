package dataset

import "errors"

// Sentinel errors callers branch on.
var (
	// ErrSpec means the dataset spec is wrong (a missing or unknown field,
	// a field without a de-identification role, an impossible setting);
	// the message says what to change. Nothing was read or written.
	ErrSpec = errors.New("invalid dataset spec")
	// ErrEmptyCohort means no patient the spec names may be used for its
	// purpose (none matches, or none consented). Nothing was written;
	// widen the cohort or wait for consents.
	ErrEmptyCohort = errors.New("empty cohort")
	// ErrRefused means the de-identified data did not meet the spec: the
	// privacy model was unreachable within the suppression limit, or the
	// re-identification risk was above the limit (the error then wraps a
	// *tabular.RiskError naming the quasi-identifiers that drive it).
	// Nothing was written; coarsen the quasi-identifiers or allow more
	// suppression.
	ErrRefused = errors.New("dataset refused")
	// ErrInterrupted means the job stopped before it finished (a signal,
	// a lost database); its job directory is kept. Run the same command
	// again to resume where it stopped.
	ErrInterrupted = errors.New("dataset job interrupted")
	// ErrExists means the output directory already exists; choose a new
	// one (datasets are never overwritten).
	ErrExists = errors.New("output already exists")
	// ErrTampered means a dataset does not verify: its manifest's
	// signature fails, or a file was changed, removed or added. The
	// *VerifyError names every problem. Do not use the dataset.
	ErrTampered = errors.New("dataset does not verify")
	// ErrNotFound means no such dataset is recorded in this hospital.
	ErrNotFound = errors.New("dataset not found")
	// ErrDenied means the caller may not do this (re-identification is
	// the security officer's alone); it is audited.
	ErrDenied = errors.New("not allowed")
)
