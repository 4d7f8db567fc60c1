// Package text finds and removes protected health information in clinical
// free text: progress notes, discharge summaries, letters and the like,
// written in English, Korean or both.
//
// It serves the paper's anonymization and de-identification technology at
// location 9 (what leaves the hospital for patients and for medical AI) and
// the AI-dataset path of issue 6: notes that go into a training set must not
// carry names, dates, numbers or addresses that point back at a person.
//
// Find reports what it recognizes with a confidence; a Redactor replaces the
// findings with type tags ("[NAME]") or with consistent surrogates keyed by a
// secret. The recognizer is rule based: patterns for numbers and dates,
// word lists and context words for names, with Korean specifics (Hangul
// names, resident registration numbers, 010 phone numbers, road addresses).
package text

import (
	"cmp"
	"math"
	"slices"
)

// Kind names a type of protected health information.
type Kind string

// The kinds Find reports. They follow the HIPAA Safe Harbor identifiers plus
// the Korean resident registration number.
const (
	Name       Kind = "NAME"
	Date       Kind = "DATE"
	Age        Kind = "AGE" // only ages over 89
	Phone      Kind = "PHONE"
	Email      Kind = "EMAIL"
	Address    Kind = "ADDRESS"
	Postal     Kind = "POSTAL"
	MRN        Kind = "MRN"
	Account    Kind = "ACCOUNT"
	HealthPlan Kind = "HEALTHPLAN"
	License    Kind = "LICENSE"
	Device     Kind = "DEVICE"
	RRN        Kind = "RRN"
	SSN        Kind = "SSN"
	URL        Kind = "URL"
	IP         Kind = "IP"
)

// Kinds lists every kind Find can report, in a stable order.
var Kinds = []Kind{Name, Date, Age, Phone, Email, Address, Postal, MRN,
	Account, HealthPlan, License, Device, RRN, SSN, URL, IP}

// Finding is one piece of protected health information in a text.
type Finding struct {
	Kind       Kind
	Start, End int    // byte offsets into the text, on rune boundaries
	Text       string // the text between Start and End
	Confidence float64
}

// floor is the lowest confidence Find reports; weaker guesses are dropped
// so that callers need not sift through noise.
const floor = 0.2

// Find returns the protected health information found in s, ordered by
// position and not overlapping. Each finding carries a confidence in (0, 1];
// a Redactor drops those below its MinConfidence. A value found once (a
// number by its label, a name by its title) is also reported wherever else
// it stands as a word of its own in s.
func Find(s string) []Finding {
	_, fs := find(s)
	return fs
}

func find(s string) (*doc, []Finding) {
	d := newDoc(s)
	var c []Finding
	for _, r := range recognizers {
		c = r(d, c)
	}
	c = propagateNames(d, c)
	return d, sweep(d, resolve(s, c))
}

// recognizers run in this order; later ones may consult earlier findings
// (postal codes look for the address beside them).
var recognizers = []func(*doc, []Finding) []Finding{
	findEmails,
	findURLs,
	findIPs,
	findRRNs,
	findSSNs,
	findPhones,
	findLabeledIDs,
	findDates,
	findAges,
	findSpelledAges,
	findAddresses,
	findPostals,
	findNames,
}

// resolve keeps the strongest of overlapping candidates: higher confidence
// first, then the longer span. The result is sorted by position. Overlaps
// are settled cluster by cluster, so the cost stays near linear on long
// texts where most candidates stand alone.
func resolve(s string, c []Finding) []Finding {
	slices.SortFunc(c, func(a, b Finding) int { return cmp.Compare(a.Start, b.Start) })
	var kept []Finding
	for i := 0; i < len(c); {
		j, end := i+1, c[i].End
		for j < len(c) && c[j].Start < end {
			end = max(end, c[j].End)
			j++
		}
		kept = append(kept, settle(s, c[i:j])...)
		i = j
	}
	return kept
}

// settle picks from one cluster of overlapping candidates. A byte map of
// the cluster's span marks what is taken, so a long chain of overlaps
// costs the sum of the candidates' lengths, not their number squared.
func settle(s string, cluster []Finding) []Finding {
	if len(cluster) == 1 {
		return keep(s, nil, cluster[0])
	}
	slices.SortStableFunc(cluster, func(a, b Finding) int {
		if a.Confidence != b.Confidence {
			return cmp.Compare(b.Confidence, a.Confidence)
		}
		return cmp.Compare(b.End-b.Start, a.End-a.Start)
	})
	lo, hi := cluster[0].Start, cluster[0].End
	for _, f := range cluster {
		lo, hi = min(lo, f.Start), max(hi, f.End)
	}
	taken := make([]bool, hi-lo)
	var kept []Finding
	for _, f := range cluster {
		if slices.Contains(taken[max(0, f.Start-lo):max(0, f.End-lo)], true) {
			continue
		}
		n := len(kept)
		if kept = keep(s, kept, f); len(kept) > n {
			for i := f.Start - lo; i < f.End-lo; i++ {
				taken[i] = true
			}
		}
	}
	slices.SortFunc(kept, func(a, b Finding) int { return cmp.Compare(a.Start, b.Start) })
	return kept
}

// keep appends f with its text and a rounded confidence, unless it is too
// weak or empty.
func keep(s string, kept []Finding, f Finding) []Finding {
	if f.Confidence < floor || f.Start >= f.End {
		return kept
	}
	f.Text = s[f.Start:f.End]
	f.Confidence = math.Round(f.Confidence*100) / 100 // sums of weights: no false precision
	return append(kept, f)
}

func clamp(x float64) float64 {
	return min(1, max(0, x))
}
