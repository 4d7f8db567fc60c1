package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/medsec/medsec/internal/records"
)

// Life-cycle stages (the paper's information life cycle).
const (
	StageCollection  = "creation/collection"
	StageStorage     = "storage/processing"
	StageProvision   = "provision/utilization"
	StageDestruction = "destruction/disposal"
)

// Kinds of places patient data is or went.
const (
	KindRecords      = "records"       // the hospital's sealed records (this package)
	KindProvision    = "provision"     // packages sent to recipients (internal/provision)
	KindGatewayQueue = "gateway-queue" // hook: internal/gateway
	KindImaging      = "imaging"       // hook: internal/imaging
	KindDataset      = "ai-dataset"    // hook: internal/deid dataset lineage
)

// Subject names the patient a Source is asked about.
type Subject struct {
	PatientID string
	Pseudonym string
}

// Location is one place a patient's data is or went, and what became of
// it. It holds no PHI.
type Location struct {
	Kind   string `json:"kind"`
	Place  string `json:"place"`  // e.g. "sealed records: note", "package pkg_…"
	Holder string `json:"holder"` // who holds it: the hospital, a recipient
	Count  int    `json:"count"`
	Stage  string `json:"stage"`
	State  string `json:"state"` // in words: "sealed, kept until …", "destroyed on … (receipt verified)"
	// Since is when the data arrived there; Until when it must be gone.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Source is a place outside the sealed records that holds or held copies
// of patient data: provision packages (internal/provision implements it),
// and — hooks for their packages to fill — gateway queues, imaging stores
// and AI datasets. Trace asks every connected Source.
type Source interface {
	// Kind is one of the Kind constants.
	Kind() string
	// Locations lists the subject's data at this source, destroyed copies
	// included (with their proof), so the map shows the whole history.
	Locations(ctx context.Context, s Subject) ([]Location, error)
}

// Eraser is a Source that acts on an erasure: it destroys the copies it
// holds, or, for copies it cannot reach (a recipient's), asks for their
// destruction. It returns the copies still outside.
type Eraser interface {
	Source
	Erase(ctx context.Context, s Subject, basis string) ([]Location, error)
}

// Hook is a kind of place the data map expects a Source for.
type Hook struct {
	Kind      string `json:"kind"`
	Connected bool   `json:"connected"`
	Note      string `json:"note,omitempty"`
}

// hooks are the places other packages will report; until they connect,
// the map says so instead of pretending they hold nothing.
var hooks = []Hook{
	{Kind: KindProvision, Note: "internal/provision: packages to pharmacies, hospitals, agencies"},
	{Kind: KindGatewayQueue, Note: "internal/gateway: store-and-forward queues of the gateways, separate processes that hold only end-to-end encrypted messages until delivery; not reported to the map yet"},
	{Kind: KindImaging, Note: "internal/imaging: DICOM studies and the quarantine"},
	{Kind: KindDataset, Note: "internal/dataset: AI datasets, from the sealed dataset lineage"},
}

// DataMap answers "where is this patient's data, and who has it?".
type DataMap struct {
	Patient    string     `json:"patient"` // pseudonym
	PatientID  string     `json:"patient_id"`
	Registered time.Time  `json:"registered"`
	State      string     `json:"state"`
	Locations  []Location `json:"locations"`
	Hooks      []Hook     `json:"hooks"`
	At         time.Time  `json:"at"`
}

// Trace draws the patient's data map for a member of staff: sealed
// records by class and count with their retention, and every copy the
// connected sources know of. The counting goes through the door, decided
// and audited as a search of the patient's lineage (class audit).
func (e *Engine) Trace(ctx context.Context, req records.Request, patientID string) (DataMap, error) {
	h, err := e.cfg.Door.Holdings(ctx, req, patientID)
	if err != nil {
		return DataMap{}, err
	}
	return e.drawMap(ctx, h)
}

// TraceOwn draws the data map of the patient signed in to the portal:
// "where is my data, and who has it?".
func (e *Engine) TraceOwn(ctx context.Context, p records.PatientPrincipal) (DataMap, error) {
	h, err := e.cfg.Door.PatientHoldings(ctx, p)
	if err != nil {
		return DataMap{}, err
	}
	return e.drawMap(ctx, h)
}

func (e *Engine) drawMap(ctx context.Context, h records.Holdings) (DataMap, error) {
	m := DataMap{Patient: h.Pseudonym, PatientID: h.PatientID, Registered: h.Registered, At: e.cfg.Now()}
	holds, err := e.Holds(ctx, false)
	if err != nil {
		return DataMap{}, err
	}
	m.State, m.Locations = e.recordLocations(h, newHoldSet(holds, e.cfg.Schedule))
	if h.Destroyed != nil {
		if err := e.backupState(ctx, &m, h); err != nil {
			return DataMap{}, err
		}
	}
	if err := e.sourceLocations(ctx, &m, Subject{PatientID: h.PatientID, Pseudonym: h.Pseudonym}); err != nil {
		return DataMap{}, err
	}
	return m, nil
}

// backupState says whether backups made before the destruction can still
// bring the patient's data back: they hold the wrapped data key, readable
// while the key-encryption key version that wrapped it is held.
func (e *Engine) backupState(ctx context.Context, m *DataMap, h records.Holdings) error {
	if e.cfg.Keys == nil {
		return nil
	}
	exposed, err := e.cfg.Keys.InBackups(ctx, h.PatientID)
	if err != nil {
		return err
	}
	backup := Location{Kind: KindRecords, Place: "backups made before " + h.Destroyed.At.UTC().Format(time.DateOnly), Holder: "hospital",
		Stage: StageDestruction, State: "unreadable: the key-encryption key that wrapped the patient's key is retired", Until: h.Destroyed.At}
	if exposed {
		backup.Stage = StageStorage
		backup.State = "still readable with the current key file: run medsec keys rotate, then destroy old copies of the key file"
		m.State += "; backups made before it still hold the wrapped key until the key-encryption key is rotated"
	} else {
		m.State += "; unreadable in backups too (the key-encryption key that wrapped its key is retired)"
	}
	m.Locations = append(m.Locations, backup)
	return nil
}

func (e *Engine) recordLocations(h records.Holdings, hs holdSet) (string, []Location) {
	if h.Destroyed != nil {
		state := fmt.Sprintf("destroyed on %s (%s): crypto-shredded, unreadable here",
			h.Destroyed.At.UTC().Format(time.DateOnly), h.Destroyed.Basis)
		locs := []Location{{Kind: KindRecords, Place: "patient data key", Holder: "hospital", Stage: StageDestruction, State: state, Until: h.Destroyed.At}}
		for _, c := range h.Classes {
			locs = append(locs, Location{Kind: KindRecords, Place: "sealed records: " + c.Class, Holder: "hospital", Count: c.Count,
				Stage: StageDestruction, State: "ciphertext only; its key is destroyed", Since: c.Oldest})
		}
		return state, locs
	}
	last := h.LastActivity()
	locs := []Location{e.classLocation(h.PatientID, ClassDemographics, 1, last, last, hs)}
	locs[0].Place, locs[0].Since = "sealed demographics", h.Registered
	for _, c := range h.Classes {
		locs = append(locs, e.classLocation(h.PatientID, c.Class, c.Count, c.Oldest, c.Newest, hs))
	}
	return "held by the hospital, sealed with the patient's data key", locs
}

// classLocation says how long a class of the patient's records is kept:
// until the newest is due, with the oldest possibly due already.
func (e *Engine) classLocation(patientID, class string, n int, oldest, newest time.Time, hs holdSet) Location {
	l := Location{Kind: KindRecords, Place: "sealed records: " + class, Holder: "hospital", Count: n, Stage: StageStorage, Since: oldest}
	rule, ok := e.cfg.Schedule.Rule(class)
	if hold, held := hs.covers(patientID, class); held {
		l.State = fmt.Sprintf("sealed; legal hold %s (%s) keeps it", hold.ID, hold.Reason)
		return l
	}
	if !ok {
		l.State = "sealed; no retention rule for this class: kept until a rule is added"
		return l
	}
	now, id := e.cfg.Now(), rule.ID(e.cfg.Schedule.Name)
	l.Until = rule.Keep.After(newest)
	switch first := rule.Keep.After(oldest); {
	case !l.Until.After(now):
		l.State = fmt.Sprintf("retention ended %s (%s): the next retention run destroys it", day(l.Until), id)
	case !first.After(now):
		l.State = fmt.Sprintf("sealed; kept until %s (%s); the oldest are due already", day(l.Until), id)
	case n > 1:
		l.State = fmt.Sprintf("sealed; kept until %s (%s); the oldest due %s", day(l.Until), id, day(first))
	default:
		l.State = fmt.Sprintf("sealed; kept until %s (%s)", day(l.Until), id)
	}
	return l
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func (e *Engine) sourceLocations(ctx context.Context, m *DataMap, s Subject) error {
	connected := map[string]bool{}
	for _, src := range e.cfg.Sources {
		locs, err := src.Locations(ctx, s)
		if err != nil {
			return fmt.Errorf("trace %s: %w", src.Kind(), err)
		}
		connected[src.Kind()] = true
		m.Locations = append(m.Locations, locs...)
	}
	for _, h := range hooks {
		h.Connected = connected[h.Kind]
		m.Hooks = append(m.Hooks, h)
	}
	slices.SortStableFunc(m.Locations, func(a, b Location) int { return kindOrder(a.Kind) - kindOrder(b.Kind) })
	return nil
}

func kindOrder(k string) int {
	for i, h := range []string{KindRecords, KindProvision, KindGatewayQueue, KindImaging, KindDataset} {
		if h == k {
			return i
		}
	}
	return 99
}
