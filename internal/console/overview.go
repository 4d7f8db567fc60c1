package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/console/display"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/posture"
)

// postureCache keeps the posture report a few seconds: every overview
// shows it, and a check reads the staff list, the key file and more.
type postureCache struct {
	h       *hospital.Hospital
	display *display.Settings
	ttl     time.Duration
	mu      sync.Mutex
	report  *posture.Report
	at      time.Time
}

func (pc *postureCache) get(ctx context.Context, r *http.Request, now time.Time) (*posture.Report, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.report != nil && now.Sub(pc.at) < pc.ttl {
		return pc.report, nil
	}
	rep, err := posture.Check(ctx, pc.h, posture.Options{Now: now, TLS: r.TLS, Display: pc.display})
	if err != nil {
		return nil, err
	}
	pc.report, pc.at = rep, now
	return rep, nil
}

// forget drops the cached report (after a verification).
func (pc *postureCache) forget() {
	pc.mu.Lock()
	pc.report = nil
	pc.mu.Unlock()
}

type overviewData struct {
	Map        []mapBox
	Arrows     []arrow
	Locations  []locationRow
	Posture    *posture.Report
	Managers   bool // security officer or IT administrator: alerts, charts, verify
	OpenAlerts int
	ByKind     []kindCount
	Recent     []alerts.Alert
	Rates      rates
	Audit      auditState
	Charts     []chart
}

type kindCount struct {
	Kind string
	N    int
}

type rates struct {
	IngestHour, Ingest24h, AccessHour, Access24h int
}

type auditState struct {
	Events        uint64
	Checkpoint    posture.SignedCheckpoint
	CheckpointErr string
	Verified      posture.Verified
	NeverVerified bool
}

func managers(role string) bool {
	return role == identity.RoleSecurityOfficer || role == identity.RoleITAdmin
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, pg *page) {
	ctx, now := r.Context(), c.now()
	rep, err := c.posture.get(ctx, r, now)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	d := overviewData{Posture: rep, Managers: managers(principalOf(ctx).Role)}
	d.Map, d.Arrows, d.Locations = flowMap(rep)
	snap, err := c.stats.update(ctx, now)
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	if err := c.auditState(ctx, &d.Audit, snap); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	if d.Managers {
		if err := c.managerPanels(ctx, &d, snap, now); err != nil {
			c.fail(w, r, pg, err)
			return
		}
	}
	pg.Data = d
	c.render(w, r, http.StatusOK, "overview", pg)
}

func (c *Console) auditState(ctx context.Context, a *auditState, snap snapshot) error {
	a.Events = snap.Events
	cp, err := posture.LatestCheckpoint(c.h)
	if err != nil {
		a.CheckpointErr = err.Error()
	}
	a.Checkpoint = cp
	a.Verified, err = posture.LastVerification(ctx, c.h.DB)
	if errors.Is(err, posture.ErrNeverVerified) {
		a.NeverVerified = true
		return nil
	}
	return err
}

func (c *Console) managerPanels(ctx context.Context, d *overviewData, snap snapshot, now time.Time) error {
	all, err := c.h.Alerts.List(ctx, alerts.Filter{Limit: 5000})
	if err != nil {
		return err
	}
	kinds := map[string]int{}
	for _, a := range all {
		if a.Open() {
			d.OpenAlerts++
			kinds[a.Kind]++
			if len(d.Recent) < 5 {
				d.Recent = append(d.Recent, a)
			}
		}
	}
	for k, n := range kinds {
		d.ByKind = append(d.ByKind, kindCount{k, n})
	}
	sort.Slice(d.ByKind, func(i, j int) bool {
		return d.ByKind[i].N > d.ByKind[j].N || d.ByKind[i].N == d.ByKind[j].N && d.ByKind[i].Kind < d.ByKind[j].Kind
	})
	h := hourOf(now)
	d.Rates = rates{IngestHour: snap.Ingest[h], Ingest24h: sum(snap.Ingest, h-23, h+1), AccessHour: snap.Access[h], Access24h: sum(snap.Access, h-23, h+1)}
	staff, err := c.h.Staff.List(ctx)
	if err != nil {
		return err
	}
	d.Charts = []chart{ingestChart(snap, h), departmentChart(snap, staff, h/24), alertChart(all, now)}
	return nil
}

func ingestChart(s snapshot, now int64) chart {
	var pts []point
	for h := now - 23; h <= now; h++ {
		pts = append(pts, point{time.Unix(h*3600, 0).Local().Format("15h"), s.Ingest[h]})
	}
	return newChart("chart.ingest", pts, 3)
}

// departmentChart counts staff accesses to patient data in the last seven
// days by the department of whoever accessed.
func departmentChart(s snapshot, staff []identity.Staff, today int64) chart {
	dept := map[string]string{}
	for _, st := range staff {
		dept[st.ID] = st.Department
	}
	counts := map[string]int{}
	for d := today - 6; d <= today; d++ {
		for actor, n := range s.ByActor[d] {
			name := dept[actor]
			if name == "" {
				name = "—"
			}
			counts[name] += n
		}
	}
	var pts []point
	for name, n := range counts {
		pts = append(pts, point{name, n})
	}
	sort.Slice(pts, func(i, j int) bool {
		return pts[i].value > pts[j].value || pts[i].value == pts[j].value && pts[i].label < pts[j].label
	})
	return newChart("chart.departments", pts[:min(len(pts), 10)], 1)
}

func alertChart(all []alerts.Alert, now time.Time) chart {
	per := map[string]int{}
	for _, a := range all {
		per[dayOf(a.Created)]++
	}
	var pts []point
	for i := 13; i >= 0; i-- {
		d := now.AddDate(0, 0, -i)
		pts = append(pts, point{d.Local().Format("01-02"), per[dayOf(d)]})
	}
	return newChart("chart.alerts", pts, 2)
}

// The map of the information flow: the eleven locations as boxes, placed
// where the data moves (outside → hospital → recipients), and arrows
// along the flow.

type mapBox struct {
	N          int
	X, Y       float64
	State      posture.State
	Label, Sub string // catalog keys
}

type arrow struct{ X1, Y1, X2, Y2 float64 }

type locationRow struct {
	N            int
	State        posture.State
	Requirements []posture.Requirement
	Findings     map[string]posture.Finding
}

const boxW, boxH = 180, 64

var boxAt = map[int][2]float64{
	1: {10, 40}, 2: {10, 170},
	3: {250, 40}, 5: {250, 170}, 4: {470, 40}, 6: {470, 170}, 7: {470, 300},
	8: {720, 10}, 9: {720, 105}, 10: {720, 200}, 11: {720, 295},
}

// flows are the arrows of the information flow (from, to).
var flows = [][2]int{{1, 2}, {2, 3}, {3, 6}, {5, 6}, {6, 4}, {6, 7}, {4, 8}, {4, 9}, {4, 10}, {4, 11}}

func flowMap(rep *posture.Report) ([]mapBox, []arrow, []locationRow) {
	rows := locationRows(rep)
	var boxes []mapBox
	for _, row := range rows {
		at := boxAt[row.N]
		n := strconv.Itoa(row.N)
		boxes = append(boxes, mapBox{N: row.N, X: at[0], Y: at[1], State: row.State, Label: "loc." + n, Sub: "stage." + n})
	}
	var arrows []arrow
	for _, fl := range flows {
		arrows = append(arrows, edge(boxAt[fl[0]], boxAt[fl[1]]))
	}
	return boxes, arrows, rows
}

// edge joins two boxes from the side of one to the side of the other.
func edge(a, b [2]float64) arrow {
	switch {
	case b[0] > a[0]+boxW: // to the right
		return arrow{a[0] + boxW, a[1] + boxH/2, b[0] - 4, b[1] + boxH/2}
	case b[1] > a[1]: // below
		return arrow{a[0] + boxW/2, a[1] + boxH, b[0] + boxW/2, b[1] - 4}
	}
	return arrow{a[0] + boxW/2, a[1], b[0] + boxW/2, b[1] + boxH + 4} // above
}

// locationRows groups Table 4 by location: a location fails when one of
// its required requirements fails and is off when the profile does not
// use it.
func locationRows(rep *posture.Report) []locationRow {
	findings := map[string]posture.Finding{}
	for _, f := range rep.Controls {
		findings[f.ID] = f
	}
	var rows []locationRow
	for _, q := range rep.Requirements {
		if len(rows) == 0 || rows[len(rows)-1].N != q.Location {
			rows = append(rows, locationRow{N: q.Location, State: posture.Off, Findings: findings})
		}
		row := &rows[len(rows)-1]
		row.Requirements = append(row.Requirements, q)
		switch {
		case q.State == posture.Fail:
			row.State = posture.Fail
		case q.State == posture.Pass && row.State == posture.Off:
			row.State = posture.Pass
		}
	}
	slices.SortFunc(rows, func(a, b locationRow) int { return a.N - b.N })
	return rows
}

// verifyNow verifies the audit log at a manager's request.
func (c *Console) verifyNow(w http.ResponseWriter, r *http.Request, pg *page) {
	if _, err := posture.Verify(r.Context(), c.h, principalOf(r.Context()).ID); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	c.posture.forget()
	redirectDone(w, r, "/console/", "verify")
}
