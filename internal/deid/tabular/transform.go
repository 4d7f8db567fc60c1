package tabular

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"sort"
	"strconv"
	"strings"
)

// MinSecretLen is the least length of a per-dataset secret.
const MinSecretLen = 32

// pseudoEncoding writes pseudonyms in lower-case base32 without padding, so
// they survive CSV, file names and case-insensitive systems.
var pseudoEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Pseudonymizer turns identifiers into keyed pseudonyms and shifts dates. One
// Pseudonymizer holds one dataset's secret: the same identifier gets the same
// pseudonym and the same date shift everywhere in that dataset, and nothing
// links two datasets made with different secrets. Reversal goes only through
// the sealed mapping the dataset keeps, never through the pseudonym itself.
type Pseudonymizer struct {
	nameKey, shiftKey []byte
}

// NewPseudonymizer derives the pseudonym and date-shift keys from a
// per-dataset secret of at least MinSecretLen bytes (HKDF-SHA-256, one key per
// purpose so a pseudonym reveals nothing about a date shift).
func NewPseudonymizer(secret []byte) (*Pseudonymizer, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrNoSecret
	}
	nk, err := hkdf.Key(sha256.New, secret, nil, "medsec deid pseudonym v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive pseudonym key: %w", err)
	}
	sk, err := hkdf.Key(sha256.New, secret, nil, "medsec deid date shift v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive date-shift key: %w", err)
	}
	return &Pseudonymizer{nameKey: nk, shiftKey: sk}, nil
}

// Pseudonym returns the keyed pseudonym of an identifier: the first 80 bits
// of HMAC-SHA-256 in base32 (16 characters; collisions are negligible below
// billions of identifiers). An empty identifier stays empty.
func (p *Pseudonymizer) Pseudonym(id string) string {
	if id == "" {
		return ""
	}
	return pseudonymOf(newKeyedMAC(p.nameKey).of(id))
}

func pseudonymOf(mac []byte) string {
	return pseudoEncoding.EncodeToString(mac[:10])
}

// keyedMAC reuses one HMAC-SHA-256 state for many short messages: a column
// of a million identifiers would otherwise set up a million of them.
type keyedMAC struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

func newKeyedMAC(key []byte) *keyedMAC {
	return &keyedMAC{h: hmac.New(sha256.New, key)}
}

// of returns the MAC of s, valid until the next call.
func (m *keyedMAC) of(s string) []byte {
	m.h.Reset()
	m.in = append(m.in[:0], s...)
	m.h.Write(m.in)
	return m.h.Sum(m.sum[:0])
}

// ShiftDays returns the patient's date shift: a keyed value in
// [-maxDays, -1] ∪ [1, maxDays], never 0 so no patient keeps real dates.
func (p *Pseudonymizer) ShiftDays(patient string, maxDays int) int {
	return shiftOf(newKeyedMAC(p.shiftKey).of(patient), maxDays)
}

func shiftOf(mac []byte, maxDays int) int {
	r := binary.BigEndian.Uint64(mac[:8]) % uint64(2*maxDays)
	if int(r) < maxDays {
		return -int(r) - 1
	}
	return int(r) - maxDays + 1
}

// ShiftDate shifts one date cell, keeping its layout. Empty cells stay empty.
func (p *Pseudonymizer) ShiftDate(v, patient string, maxDays int) (string, bool) {
	return shiftDate(v, func() int { return p.ShiftDays(patient, maxDays) })
}

func shiftDate(v string, days func() int) (string, bool) {
	if strings.TrimSpace(v) == "" {
		return v, true
	}
	t, layout, ok := parseDate(v)
	if !ok {
		return "", false
	}
	return t.AddDate(0, 0, days()).Format(layout), true
}

// pseudonymizeColumn replaces each identifier by its pseudonym, in place.
func (p *Pseudonymizer) pseudonymizeColumn(col []string) {
	m := newKeyedMAC(p.nameKey)
	memo := make(map[string]string)
	for r, v := range col {
		ps, ok := memo[v]
		if !ok && v != "" {
			ps = pseudonymOf(m.of(v))
			memo[v] = ps
		}
		col[r] = ps
	}
}

// shiftColumn shifts each date by its row's patient shift, in place.
func (p *Pseudonymizer) shiftColumn(dates, patients []string, name string, d *DateShift) error {
	shifts := patientShifts{mac: newKeyedMAC(p.shiftKey), maxDays: d.MaxDays, memo: make(map[string]int)}
	for r, v := range dates {
		if patients[r] == "" && v != "" {
			return fmt.Errorf("shift dates: row %d has a date in %q but no patient identifier in %q: %w", r+1, name, d.PatientColumn, ErrSpec)
		}
		s, ok := shiftDate(v, func() int { return shifts.days(patients[r]) })
		if !ok {
			return fmt.Errorf("shift dates: row %d, column %q: not a date in a known layout (YYYY-MM-DD and similar): %w", r+1, name, ErrSpec)
		}
		dates[r] = s
	}
	return nil
}

// patientShifts remembers each patient's date shift over a column.
type patientShifts struct {
	mac     *keyedMAC
	maxDays int
	memo    map[string]int
}

func (ps patientShifts) days(patient string) int {
	d, ok := ps.memo[patient]
	if !ok {
		d = shiftOf(ps.mac.of(patient), ps.maxDays)
		ps.memo[patient] = d
	}
	return d
}

// microAggregateColumn replaces a numeric column's values by the mean of
// their group, in place: values are sorted, cut into groups of k (the last
// group takes the remainder, so every group has k to 2k-1 members) and each
// value becomes its group's mean, written with as many decimals as the
// column's inputs. Empty cells stay empty.
func microAggregateColumn(col []string, k int) error {
	cells, decimals, err := numericCells(col)
	if err != nil {
		return err
	}
	if len(cells) == 0 {
		return nil
	}
	sort.SliceStable(cells, func(a, b int) bool { return cells[a].v < cells[b].v })
	groups := max(len(cells)/k, 1)
	for g := range groups {
		lo, hi := g*k, (g+1)*k
		if g == groups-1 {
			hi = len(cells)
		}
		s := strconv.FormatFloat(groupMean(cells[lo:hi]), 'f', decimals, 64)
		for _, c := range cells[lo:hi] {
			col[c.row] = s
		}
	}
	return nil
}

type numCell struct {
	row int
	v   float64
}

func numericCells(col []string) ([]numCell, int, error) {
	var cells []numCell
	decimals := 0
	for r, v := range col {
		s := strings.TrimSpace(v)
		if s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, 0, fmt.Errorf("row %d: not a number: %w", r+1, ErrSpec)
		}
		if dot := strings.IndexByte(s, '.'); dot >= 0 && !strings.ContainsAny(s, "eE") {
			decimals = max(decimals, len(s)-dot-1)
		}
		cells = append(cells, numCell{r, f})
	}
	return cells, decimals, nil
}

func groupMean(cells []numCell) float64 {
	var sum float64
	for _, c := range cells {
		sum += c.v
	}
	return sum / float64(len(cells))
}
