package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/records"
	"github.com/medsec/medsec/internal/store"
)

// The call queue of a waiting area (location 7): a ticket holds a number
// and the name masked when the ticket was issued, read once through the
// door. The full name is never stored; the masked name and the patient's
// pseudonym are sealed with the console's key, and the row links to the
// patient only by a keyed digest (found on erasure), so a copied database
// file joins no ticket to a patient. Tickets live for their day: Prune
// deletes them afterwards.

// Ticket states.
const (
	TicketWaiting = "waiting"
	TicketCalled  = "called"
	TicketDone    = "done"
)

// Ticket is one call ticket.
type Ticket struct {
	ID         string
	Department string
	Day        string
	Number     int
	Pseudonym  string
	// Name is the masked name the display shows.
	Name    string
	State   string
	Room    string
	Created time.Time
	Called  time.Time
}

var departmentPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// checkDepartment refuses a department name that cannot be a path part.
func checkDepartment(d string) error {
	if !departmentPattern.MatchString(d) {
		return fmt.Errorf("%w: department %q: use lower-case letters, digits, _ and -", errInvalid, truncate(d, 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (c *Console) today() string { return c.now().Local().Format(time.DateOnly) }

// IssueTicket gives the patient with the medical record number a call
// ticket in department's waiting area: the door finds and reads the
// patient (decided and audited), and only the masked name is kept.
func (c *Console) IssueTicket(ctx context.Context, who identity.Principal, department, mrn string) (Ticket, error) {
	if err := checkDepartment(department); err != nil {
		return Ticket{}, err
	}
	id, err := c.findByMRN(ctx, who, mrn)
	if err != nil {
		return Ticket{}, err
	}
	return c.IssueTicketFor(ctx, who, department, id)
}

// IssueTicketFor is IssueTicket for a patient known by internal id.
func (c *Console) IssueTicketFor(ctx context.Context, who identity.Principal, department, patientID string) (Ticket, error) {
	if err := checkDepartment(department); err != nil {
		return Ticket{}, err
	}
	p, err := c.h.Door.Patient(ctx, records.Request{Who: who, Purpose: "TREAT"}, patientID)
	if err != nil {
		return Ticket{}, err
	}
	t := Ticket{ID: "tk_" + randomHex(8), Department: department, Day: c.today(), Pseudonym: p.Pseudonym,
		Name: c.display.Mask.Mask(p.Name), State: TicketWaiting, Created: c.now()}
	err = c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM console_tickets WHERE department = ? AND day = ?`, t.Department, t.Day).Scan(&t.Number); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO console_tickets (id, department, day, number, patient_link, patient_sealed, name_sealed, state, issued_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Department, t.Day, t.Number, c.patientLink(t.Pseudonym), sealWith(c.ticketSealer, []byte(t.Pseudonym), "ticket patient:"+t.ID),
			sealWith(c.ticketSealer, []byte(t.Name), "ticket name:"+t.ID), t.State, who.ID, t.Created.UnixNano()); err != nil {
			return err
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, staffEvent(who, "ticket.issue", t.Pseudonym, "Ticket/"+t.ID,
			fmt.Sprintf("call ticket %d in %s, masked name shown", t.Number, t.Department)))
		return err
	})
	if err != nil {
		return Ticket{}, fmt.Errorf("issue ticket: %w", err)
	}
	return t, nil
}

// findByMRN finds exactly one patient through the door's blind index.
func (c *Console) findByMRN(ctx context.Context, who identity.Principal, mrn string) (string, error) {
	mrn = strings.TrimSpace(mrn)
	if mrn == "" || len(mrn) > 64 {
		return "", fmt.Errorf("%w: enter the medical record number", errInvalid)
	}
	ids, err := c.h.Door.FindPatient(ctx, records.Request{Who: who, Purpose: "TREAT"}, "mrn", mrn)
	if err != nil {
		return "", err
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("%w: no single patient has this medical record number", errNotFound)
	}
	return ids[0], nil
}

func staffEvent(who identity.Principal, action, patient, resource, reason string) audit.Event {
	return audit.Event{Actor: who.ID, Role: who.Role, Action: action, Patient: patient, Resource: resource,
		Outcome: audit.Success, Source: who.Source, Reason: reason, Purpose: "TREAT"}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// errQueueEmpty means nobody waits in the department.
var errQueueEmpty = errors.New("nobody is waiting")

// CallNext calls the longest-waiting ticket of department to room.
func (c *Console) CallNext(ctx context.Context, who identity.Principal, department, room string) (Ticket, error) {
	if err := checkDepartment(department); err != nil {
		return Ticket{}, err
	}
	room = truncate(strings.TrimSpace(room), 40)
	var t Ticket
	err := c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		t, err = c.scanTicket(tx.QueryRow(ctx, `SELECT `+ticketColumns+` FROM console_tickets WHERE department = ? AND day = ? AND state = ? ORDER BY number LIMIT 1`,
			department, c.today(), TicketWaiting))
		if errors.Is(err, store.ErrNotFound) {
			return errQueueEmpty
		}
		if err != nil {
			return err
		}
		t.State, t.Room, t.Called = TicketCalled, room, c.now()
		if _, err := tx.Exec(ctx, `UPDATE console_tickets SET state = ?, room = ?, called_at = ? WHERE id = ?`, t.State, t.Room, t.Called.UnixNano(), t.ID); err != nil {
			return err
		}
		_, err = c.h.Audit.AppendTx(ctx, tx, staffEvent(who, "ticket.call", t.Pseudonym, "Ticket/"+t.ID, fmt.Sprintf("ticket %d called to %q", t.Number, t.Room)))
		return err
	})
	return t, err
}

// FinishTicket takes a called ticket off the display.
func (c *Console) FinishTicket(ctx context.Context, who identity.Principal, id string) error {
	return c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE console_tickets SET state = ?, done_at = ? WHERE id = ? AND state <> ?`, TicketDone, c.now().UnixNano(), id, TicketDone)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotFound
		}
		_, err = c.h.Audit.AppendTx(ctx, tx, staffEvent(who, "ticket.done", "", "Ticket/"+id, ""))
		return err
	})
}

const ticketColumns = `id, department, day, number, patient_sealed, name_sealed, state, room, created_at, called_at`

// scanTicket reads a ticket row and opens its sealed pseudonym and name.
func (c *Console) scanTicket(row interface{ Scan(...any) error }) (Ticket, error) {
	var t Ticket
	var created int64
	var called *int64
	var patient, name []byte
	if err := row.Scan(&t.ID, &t.Department, &t.Day, &t.Number, &patient, &name, &t.State, &t.Room, &created, &called); err != nil {
		return t, err
	}
	t.Created = time.Unix(0, created)
	if called != nil {
		t.Called = time.Unix(0, *called)
	}
	p, err := openWith(c.ticketSealer, patient, "ticket patient:"+t.ID)
	if err != nil {
		return t, fmt.Errorf("open ticket %s: %w", t.ID, err)
	}
	n, err := openWith(c.ticketSealer, name, "ticket name:"+t.ID)
	if err != nil {
		return t, fmt.Errorf("open ticket %s: %w", t.ID, err)
	}
	t.Pseudonym, t.Name = string(p), string(n)
	return t, nil
}

// patientLink is the keyed digest a ticket names its patient by: the
// console finds a patient's tickets with it, a copy of the database file
// cannot join it to the door's patient table.
func (c *Console) patientLink(pseudonym string) []byte {
	m := hmac.New(sha256.New, c.linkKey)
	m.Write([]byte("ticket patient\x00" + pseudonym))
	return m.Sum(nil)
}

// queue is a department's tickets of today: the called ones (newest
// first) and the waiting ones (in order).
type queue struct {
	Called, Waiting []Ticket
}

func (c *Console) queue(ctx context.Context, department string) (queue, error) {
	var q queue
	rows, err := c.h.DB.Query(ctx, `SELECT `+ticketColumns+` FROM console_tickets WHERE department = ? AND day = ? AND state <> ? ORDER BY number`,
		department, c.today(), TicketDone)
	if err != nil {
		return q, err
	}
	defer rows.Close()
	for rows.Next() {
		t, err := c.scanTicket(rows)
		if err != nil {
			return q, err
		}
		if t.State == TicketCalled {
			q.Called = append(q.Called, t)
		} else {
			q.Waiting = append(q.Waiting, t)
		}
	}
	sort.SliceStable(q.Called, func(i, j int) bool { return q.Called[i].Called.After(q.Called[j].Called) })
	return q, rows.Err()
}
