// Package anomaly watches the audit stream for accesses a security officer
// should look at (issue 4 item 8): access outside the care relationship, a
// user's volume far above their usual, bulk reads after hours, staff
// reading a co-worker's or a same-surname patient's record, VIP access, and
// repeated denials. Each finding is an alert in the security officer's
// inbox, naming staff by id and patients by pseudonym only.
//
// It serves the paper's locations 4 and 6 (access control on the HIS and
// the main server) and Table 2's "arbitrary access to sensitive patient
// information by internal staff regardless of their position or
// department". It reads the log in order from a stored cursor, so it runs
// on a schedule inside `medsec serve` and on demand, and several runs never
// count an event twice.
package anomaly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/store"
)

// Migrations create the cursor and the per-user counters.
var Migrations = []store.Migration{
	{Component: "anomaly", Version: 1, Name: "cursor and counters", SQL: `CREATE TABLE anomaly_cursor (
		chain TEXT PRIMARY KEY,
		next_index BIGINT NOT NULL);
		CREATE TABLE anomaly_counts (
		actor TEXT NOT NULL,
		kind TEXT NOT NULL,
		bucket BIGINT NOT NULL,
		n BIGINT NOT NULL,
		PRIMARY KEY (actor, kind, bucket));
		CREATE TABLE anomaly_raised (
		dedup TEXT PRIMARY KEY,
		raised_at BIGINT NOT NULL)`},
}

// Rules are the thresholds; DefaultRules suit a small hospital.
type Rules struct {
	// VolumeFactor × the user's usual daily reads (median of the past
	// HistoryDays days with any reads, at least MinHistory of them), and at
	// least MinVolume reads, is "far above usual".
	VolumeFactor float64
	MinVolume    int64
	HistoryDays  int
	MinHistory   int
	// After hours is from AfterHoursFrom to AfterHoursTo (local hours in
	// Location); BulkAfterHours patient reads in one hour then are bulk.
	AfterHoursFrom, AfterHoursTo int
	BulkAfterHours               int64
	Location                     *time.Location
	// DenialsPerWindow denials by one user within DenialWindow.
	DenialsPerWindow int64
	DenialWindow     time.Duration
	// CarePolicies are the permits that express a care relationship; a
	// clinician's read allowed by any other permit is outside it.
	CarePolicies []string
}

// DefaultRules: 5× usual and at least 50 reads a day; more than 20 reads
// in an hour between 22:00 and 06:00; 5 denials in 10 minutes.
var DefaultRules = Rules{VolumeFactor: 5, MinVolume: 50, HistoryDays: 14, MinHistory: 3,
	AfterHoursFrom: 22, AfterHoursTo: 6, BulkAfterHours: 20, Location: time.Local,
	DenialsPerWindow: 5, DenialWindow: 10 * time.Minute,
	CarePolicies: []string{"physician-attending", "physician-care-team", "nurse-ward", "pharmacist-dispensing"}}

// Detector scans the audit log of one chain.
type Detector struct {
	db    *store.DB
	chain string
	inbox *alerts.Inbox
	Rules Rules
	Log   *slog.Logger
}

// New returns a detector with the default rules.
func New(db *store.DB, chain string, inbox *alerts.Inbox) *Detector {
	return &Detector{db: db, chain: chain, inbox: inbox, Rules: DefaultRules, Log: slog.Default()}
}

// Report says what one scan did.
type Report struct {
	Events uint64         `json:"events"`
	Alerts int            `json:"alerts"`
	ByRule map[string]int `json:"by_rule,omitempty"`
	Next   uint64         `json:"next_index"`
}

// ErrRaced means another scan moved the cursor first; nothing was counted
// twice, and the next scan goes on from there.
var ErrRaced = errors.New("another anomaly scan ran at the same time")

// batch bounds one scan's transaction.
const batch = 5000

// Scan reads the events since the cursor (at most a batch), counts them,
// raises alerts and moves the cursor, all in one transaction.
func (d *Detector) Scan(ctx context.Context) (Report, error) {
	rep := Report{ByRule: map[string]int{}}
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		rep = Report{ByRule: map[string]int{}}
		from, err := cursor(ctx, tx, d.chain)
		if err != nil {
			return err
		}
		evs, err := events(ctx, d.db, d.chain, from)
		if err != nil {
			return err
		}
		rep.Events, rep.Next = uint64(len(evs)), from+uint64(len(evs))
		if len(evs) == 0 {
			return nil
		}
		s := &scan{d: d, tx: tx, rep: &rep}
		if err := s.run(ctx, evs); err != nil {
			return err
		}
		return moveCursor(ctx, tx, d.chain, from, rep.Next)
	})
	return rep, err
}

// ScanAll scans until the cursor reaches the end of the log.
func (d *Detector) ScanAll(ctx context.Context) (Report, error) {
	total := Report{ByRule: map[string]int{}}
	for {
		rep, err := d.Scan(ctx)
		if err != nil {
			return total, err
		}
		total.Events += rep.Events
		total.Alerts += rep.Alerts
		total.Next = rep.Next
		for k, v := range rep.ByRule {
			total.ByRule[k] += v
		}
		if rep.Events < batch {
			return total, nil
		}
	}
}

// Run scans every interval until ctx ends.
func (d *Detector) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if rep, err := d.ScanAll(ctx); err != nil && !errors.Is(err, ErrRaced) && ctx.Err() == nil {
			d.Log.Error("access anomaly scan failed", "error", err)
		} else if rep.Alerts > 0 {
			d.Log.Info("access anomalies found", "alerts", rep.Alerts, "events", rep.Events)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func cursor(ctx context.Context, tx *store.Tx, chain string) (uint64, error) {
	var next int64
	err := tx.QueryRow(ctx, `SELECT next_index FROM anomaly_cursor WHERE chain = ?`, chain).Scan(&next)
	if errors.Is(err, store.ErrNotFound) {
		_, err = tx.Exec(ctx, `INSERT INTO anomaly_cursor (chain, next_index) VALUES (?, 0)`, chain)
		return 0, err
	}
	return uint64(next), err
}

func moveCursor(ctx context.Context, tx *store.Tx, chain string, from, to uint64) error {
	res, err := tx.Exec(ctx, `UPDATE anomaly_cursor SET next_index = ? WHERE chain = ? AND next_index = ?`, int64(to), chain, int64(from))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrRaced
	}
	return nil
}

func events(ctx context.Context, db *store.DB, chain string, from uint64) ([]audit.Event, error) {
	var out []audit.Event
	err := audit.Scan(ctx, db, chain, from, from+batch, func(e audit.Event) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// scan is one pass's state: counts to add, alerts to raise.
type scan struct {
	d   *Detector
	tx  *store.Tx
	rep *Report
}

// Counter kinds.
const (
	countDaily      = "daily-reads"
	countAfterHours = "after-hours-reads"
	countDenials    = "denials"
)

type key struct {
	actor, kind string
	bucket      int64
}

func (s *scan) run(ctx context.Context, evs []audit.Event) error {
	counts := map[key]int64{}
	last := map[key]audit.Event{}
	for _, e := range evs {
		if err := s.single(ctx, e); err != nil {
			return err
		}
		for _, k := range s.buckets(e) {
			counts[k]++
			last[k] = e
		}
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	for _, k := range keys {
		total, err := s.add(ctx, k, counts[k])
		if err != nil {
			return err
		}
		if err := s.threshold(ctx, k, total, counts[k], last[k]); err != nil {
			return err
		}
	}
	return nil
}

// patientRead: staff opened a patient's data.
func patientRead(e audit.Event) bool {
	if e.Patient == "" || e.Outcome != audit.Success || strings.HasPrefix(e.Actor, "system:") || strings.HasPrefix(e.Actor, "patient:") {
		return false
	}
	for _, s := range []string{".read", ".search", ".export", ".break_glass"} {
		if strings.HasSuffix(e.Action, s) {
			return true
		}
	}
	return false
}

// buckets are the counters an event adds to.
func (s *scan) buckets(e audit.Event) []key {
	r := s.d.Rules
	var ks []key
	if patientRead(e) {
		local := e.Time.In(r.Location)
		ks = append(ks, key{e.Actor, countDaily, dayOf(local)})
		if afterHours(local.Hour(), r.AfterHoursFrom, r.AfterHoursTo) {
			ks = append(ks, key{e.Actor, countAfterHours, e.Time.Unix() / 3600})
		}
	}
	// A gateway's report of the device messages it refused is denied on
	// the devices' account, not the gateway's; ingestion alerts on those.
	if e.Outcome == audit.Denied && e.Actor != "anonymous" && !strings.HasPrefix(e.Actor, "system:") && e.Action != "gateway.refuse" {
		ks = append(ks, key{e.Actor, countDenials, e.Time.Unix() / int64(r.DenialWindow/time.Second)})
	}
	return ks
}

func dayOf(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func afterHours(h, from, to int) bool {
	if from > to {
		return h >= from || h < to
	}
	return h >= from && h < to
}

func (s *scan) add(ctx context.Context, k key, n int64) (int64, error) {
	_, err := s.tx.Exec(ctx, `INSERT INTO anomaly_counts (actor, kind, bucket, n) VALUES (?, ?, ?, ?) ON CONFLICT (actor, kind, bucket) DO UPDATE SET n = anomaly_counts.n + excluded.n`,
		k.actor, k.kind, k.bucket, n)
	if err != nil {
		return 0, fmt.Errorf("count %s of %s: %w", k.kind, k.actor, err)
	}
	var total int64
	err = s.tx.QueryRow(ctx, `SELECT n FROM anomaly_counts WHERE actor = ? AND kind = ? AND bucket = ?`, k.actor, k.kind, k.bucket).Scan(&total)
	return total, err
}

// threshold raises the counting rules' alerts when this scan took a counter
// over its threshold (dedup keeps it to one alert per bucket).
func (s *scan) threshold(ctx context.Context, k key, total, added int64, e audit.Event) error {
	r := s.d.Rules
	switch k.kind {
	case countAfterHours:
		if total > r.BulkAfterHours {
			return s.raise(ctx, "bulk-after-hours", alerts.Warning, e, fmt.Sprintf("%s read patient records %d times in one hour after hours (threshold %d)", k.actor, total, r.BulkAfterHours), fmt.Sprint(k.bucket))
		}
	case countDenials:
		if total >= r.DenialsPerWindow {
			return s.raise(ctx, "repeated-denials", alerts.Warning, e, fmt.Sprintf("%s was refused %d times within %s", k.actor, total, r.DenialWindow), fmt.Sprint(k.bucket))
		}
	case countDaily:
		usual, ok, err := s.usual(ctx, k)
		if err != nil || !ok {
			return err
		}
		if total >= r.MinVolume && float64(total) > r.VolumeFactor*usual {
			return s.raise(ctx, "volume", alerts.Warning, e, fmt.Sprintf("%s read patient records %d times today, usually about %.0f a day", k.actor, total, usual), fmt.Sprint(k.bucket))
		}
	}
	return nil
}

// usual is the median of the user's daily reads over the past days that
// had any.
func (s *scan) usual(ctx context.Context, k key) (float64, bool, error) {
	r := s.d.Rules
	rows, err := s.tx.Query(ctx, `SELECT n FROM anomaly_counts WHERE actor = ? AND kind = ? AND bucket >= ? AND bucket < ?`,
		k.actor, countDaily, k.bucket-int64(r.HistoryDays), k.bucket)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var ns []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return 0, false, err
		}
		ns = append(ns, n)
	}
	if len(ns) < r.MinHistory {
		return 0, false, rows.Err()
	}
	slices.Sort(ns)
	return float64(ns[len(ns)/2]), true, rows.Err()
}

// single applies the rules that one event triggers by itself.
func (s *scan) single(ctx context.Context, e audit.Event) error {
	if !patientRead(e) {
		return nil
	}
	flags := map[string]string{
		"co-worker":    "read the record of a member of staff",
		"same-surname": "read the record of a patient who shares their surname",
		"vip":          "opened a VIP's record",
	}
	for f, what := range flags {
		if slices.Contains(e.Flags, f) {
			if err := s.raise(ctx, f, alerts.Warning, e, fmt.Sprintf("%s %s (%s)", e.Actor, what, e.Patient), fmt.Sprint(e.Index)); err != nil {
				return err
			}
		}
	}
	if outsideCare(e, s.d.Rules.CarePolicies) {
		return s.raise(ctx, "outside-care", alerts.Warning, e,
			fmt.Sprintf("%s (%s) opened %s outside a care relationship", e.Actor, e.Role, e.Patient), e.Actor+"/"+e.Patient+"/"+fmt.Sprint(dayOf(e.Time)))
	}
	return nil
}

// outsideCare: a clinician's read that no care-relationship permit allowed
// (a department-wide permit, a break-glass).
func outsideCare(e audit.Event, care []string) bool {
	if e.Role != "physician" && e.Role != "nurse" || len(e.Decision) == 0 {
		return false
	}
	var d struct {
		Policies []string `json:"policies"`
	}
	if json.Unmarshal(e.Decision, &d) != nil || len(d.Policies) == 0 {
		return false
	}
	for _, p := range d.Policies {
		if slices.Contains(care, p) {
			return false
		}
	}
	return true
}

// raise raises an alert once per dedup key. The key is claimed in this
// package's own table first (a conflicting insert would abort a PostgreSQL
// transaction).
func (s *scan) raise(ctx context.Context, rule, severity string, e audit.Event, summary, dedup string) error {
	dedup = "anomaly:" + rule + ":" + e.Actor + ":" + dedup
	res, err := s.tx.Exec(ctx, `INSERT INTO anomaly_raised (dedup, raised_at) VALUES (?, ?) ON CONFLICT (dedup) DO NOTHING`, dedup, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("claim alert %s: %w", rule, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	raised, err := s.d.inbox.Raise(ctx, s.tx, alerts.Alert{Kind: alerts.KindAnomaly, Severity: severity, Subject: e.Actor,
		Patient: e.Patient, Summary: summary, Detail: fmt.Sprintf("rule %s; audit event %d (%s %s)", rule, e.Index, e.Action, e.Time.UTC().Format(time.RFC3339)),
		Dedup: dedup})
	if raised {
		s.rep.Alerts++
		s.rep.ByRule[rule]++
	}
	return err
}
