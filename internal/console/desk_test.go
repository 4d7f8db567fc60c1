package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
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

	screen := f.client(t).get("/display/internal_medicine")
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
	if empty := f.client(t).get("/display/no_such_ward"); empty.status != http.StatusOK || strings.Contains(empty.body, "*") {
		t.Errorf("display of an unknown department: %d", empty.status)
	}
	if r := f.client(t).get("/display/..%2Fconsole"); r.status != http.StatusOK && r.status != http.StatusNotFound {
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

func TestTicketsStoreNoName(t *testing.T) {
	f := newFixture(t)
	who := f.principal(t, "reception")
	tk, err := f.con.IssueTicket(context.Background(), who, "internal_medicine", f.mrns[0])
	if err != nil {
		t.Fatal(err)
	}
	if tk.Name != "김*수" || tk.Number != 1 || tk.Pseudonym != f.patients[0].Pseudonym {
		t.Errorf("ticket = %+v, want number 1 for %s shown as 김*수", tk, f.patients[0].Pseudonym)
	}
	var stored string
	if err := f.h.DB.QueryRow(context.Background(), `SELECT display_name FROM console_tickets WHERE id = ?`, tk.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != "김*수" {
		t.Errorf("stored display name %q, want only the masked name", stored)
	}
	if _, err := f.con.IssueTicket(context.Background(), who, "Bad Dept!", f.mrns[0]); err == nil {
		t.Errorf("a department name with spaces and capitals was accepted")
	}
}
