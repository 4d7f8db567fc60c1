package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
)

// TestDeskAndDisplay issues tickets at the desk, calls one, and checks the
// waiting-room display shows masked names only.
func TestDeskAndDisplay(t *testing.T) {
	f := newFixture(t)
	desk := f.signIn(t, "reception")
	token := desk.csrf("/console/desk?dept=internal_medicine")
	for _, mrn := range f.mrns {
		r := desk.post("/console/desk/tickets", url.Values{"csrf": {token}, "department": {"internal_medicine"}, "mrn": {mrn}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("issue ticket for %s: %d\n%s", mrn, r.status, r.body)
		}
	}
	if r := desk.post("/console/desk/tickets", url.Values{"csrf": {token}, "department": {"internal_medicine"}, "mrn": {"MRN-none"}}); r.status != http.StatusNotFound {
		t.Errorf("ticket for an unknown MRN: %d, want 404", r.status)
	}
	nurse := f.signIn(t, "nurse.lee")
	if r := nurse.post("/console/desk/tickets", url.Values{"csrf": {nurse.csrf("/console/desk")}, "department": {"internal_medicine"}, "mrn": {f.mrns[0]}}); r.status != http.StatusForbidden {
		t.Errorf("a nurse issuing a ticket: %d, want 403", r.status)
	}
	if r := nurse.post("/console/desk/call", url.Values{"csrf": {nurse.csrf("/console/desk")}, "department": {"internal_medicine"}, "room": {"Room 3"}}); r.status != http.StatusSeeOther {
		t.Fatalf("a nurse calling the next ticket: %d", r.status)
	}

	screen := f.screen(t, "internal_medicine").get("/display/internal_medicine")
	if screen.status != http.StatusOK {
		t.Fatalf("display: %d", screen.status)
	}
	for _, want := range []string{"김*수", "K** J*-h**", "박*준", "이*", "Room 3", `http-equiv="refresh"`} {
		if !strings.Contains(screen.body, want) {
			t.Errorf("display lacks %q", want)
		}
	}
	assertNoIdentifiers(t, f, screen.body)
	if strings.Contains(screen.body, "/console/") || strings.Contains(screen.body, "<nav") {
		t.Errorf("the display links into the console")
	}
	if empty := f.screen(t, "no_such_ward").get("/display/no_such_ward"); empty.status != http.StatusOK || strings.Contains(empty.body, "*") {
		t.Errorf("display of a department without tickets: %d", empty.status)
	}
	if r := f.client(t).get("/display/..%2Fconsole"); r.status != http.StatusNotFound {
		t.Errorf("display with a strange department: %d", r.status)
	}
}

// assertNoIdentifiers fails when a page holds any patient's full name,
// registration number, birth date, phone or medical record number.
func assertNoIdentifiers(t *testing.T, f *fixture, body string) {
	t.Helper()
	for i, p := range f.patients {
		for _, v := range []string{f.names[i], p.RRN, "1990-01-01", p.Phone, f.mrns[i]} {
			if v != "" && strings.Contains(body, v) {
				t.Errorf("page shows an identifier of patient %d: %q", i, v)
			}
		}
	}
}

// TestTicketsHoldNoPatient checks what a copy of the database file shows
// of a call ticket: neither the patient's pseudonym (which the door's patient table
// would join to the patient's department, ward and attending) nor the
// masked name, only sealed values and a keyed digest — while the desk and
// the display still read both.
func TestTicketsHoldNoPatient(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		f := newFixtureOn(t, b)
		ctx := context.Background()
		tk, err := f.con.IssueTicket(ctx, f.principal(t, "reception"), "internal_medicine", f.mrns[0])
		if err != nil {
			t.Fatal(err)
		}
		if tk.Name != "김*수" || tk.Number != 1 || tk.Pseudonym != f.patients[0].Pseudonym {
			t.Errorf("ticket = %+v, want number 1 for %s shown as 김*수", tk, f.patients[0].Pseudonym)
		}
		stored := rawRows(t, f, "console_tickets")
		for _, v := range []string{f.patients[0].Pseudonym, "김*수", f.names[0], "pseudonym", "display_name"} {
			if strings.Contains(stored, v) {
				t.Errorf("the ticket table on %s holds %q in plaintext", b.Name, v)
			}
		}
		q, err := f.con.queue(ctx, "internal_medicine")
		if err != nil || len(q.Waiting) != 1 || q.Waiting[0].Name != "김*수" || q.Waiting[0].Pseudonym != f.patients[0].Pseudonym {
			t.Errorf("queue read back = %+v, %v; want the sealed name and pseudonym opened", q, err)
		}
		if _, err := f.con.IssueTicket(ctx, f.principal(t, "reception"), "Bad Dept!", f.mrns[0]); err == nil {
			t.Errorf("a department name with spaces and capitals was accepted")
		}
	})
}

// rawRows is every value of a table's rows as text, as a copy of the
// database file would show them (column names first).
func rawRows(t *testing.T, f *fixture, table string) string {
	t.Helper()
	rows, err := f.h.DB.Query(context.Background(), `SELECT * FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(strings.Join(cols, " ") + "\n")
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if raw, ok := v.([]byte); ok {
				b.Write(raw)
			} else {
				fmt.Fprint(&b, v)
			}
			b.WriteString(" | ")
		}
		b.WriteString("\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
