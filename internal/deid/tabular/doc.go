// Package tabular de-identifies tables of patient data for medical AI and for
// provision outside the hospital, and measures how re-identifiable they are.
//
// It serves location 9 of the paper (patients outside the hospital: nothing a
// dataset shows may single out a person) and the paper's "medical information
// anonymization and de-identification technology" that feeds internal data to
// AI (locations 8, 10 and 11 use the same engine for de-identified reports).
//
// A table is rows of string cells with named columns. A Spec says what happens
// to each column: direct identifiers are dropped or replaced by keyed
// pseudonyms, dates are shifted per patient, numeric values may be
// micro-aggregated, and the quasi-identifiers are generalized along
// hierarchies (age bands, postal code and district truncation, dates to month
// or year, ICD-10 categories and chapters, intervals, or a hierarchy file).
// Anonymize searches the generalization lattice for the node that meets the
// privacy model (k-anonymity, distinct or entropy l-diversity, t-closeness)
// with at most the allowed share of suppressed records and the least
// information loss, and reports the re-identification risk of what it wrote.
//
// The search is exact. It prunes in the manner of Flash and OLA: a node that
// fails the monotone part of the model (k-anonymity, distinct l-diversity)
// tags all its specializations as failing, a node that passes tags all its
// generalizations as passing, so most nodes are never evaluated. Information
// loss with suppression is not monotone, so the optimum is then found
// best-first by a monotone lower bound of the loss; nodes whose bound cannot
// beat the best node found are never evaluated. Entropy l-diversity and
// t-closeness are not monotone when records may be suppressed (merging a
// diverse class with a uniform one can make both fail), so for them only the
// monotone part prunes and every remaining candidate is evaluated.
package tabular
