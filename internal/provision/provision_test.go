package provision_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/lifecycle"
	"github.com/medsec/medsec/internal/lifecycle/lifecycletest"
	"github.com/medsec/medsec/internal/provision"
	"github.com/medsec/medsec/internal/provision/bundle"
	"github.com/medsec/medsec/internal/records"
)

var alice = records.Patient{Name: "김민수", RRN: "900101-1234568", Phone: "010-1234-5678", BirthDate: "1990-01-01", Sex: "male",
	Address: "서울특별시 강남구 테헤란로 1", MRN: "MRN-000001"}

// needles are alice's identifying values: none may reach the audit log, the
// ledger or a de-identified bundle.
var needles = []string{alice.Name, alice.RRN, alice.Phone, alice.MRN, "테헤란로"}

var pharmacyAgreement = provision.Agreement{Purposes: []string{"TREAT"}, Classes: []string{"demographics", "medication"},
	Form: bundle.Identified, Retention: lifecycle.Period{Days: 30}, Reference: "OCS-2026-01"}

// flow is one provision set-up: a stack, alice with medication orders, and
// a pharmacy.
type flow struct {
	s        *lifecycletest.Stack
	patient  records.Patient
	pharmacy provision.RecipientKeys
	ids      []age.Identity
}

func newFlow(t *testing.T, b lifecycletest.Backend) *flow {
	t.Helper()
	s := lifecycletest.New(t, b, nil)
	f := &flow{s: s, patient: s.Register(t, alice)}
	s.Add(t, f.patient.ID, records.ClassMedication, 2, s.Clock.Now())
	s.Add(t, f.patient.ID, records.ClassObservation, 3, s.Clock.Now())
	f.pharmacy = s.AddRecipient(t, "pharmacy-a", provision.KindPharmacy, pharmacyAgreement)
	ids, err := provision.ParseIdentities(f.pharmacy.AgeIdentity)
	if err != nil {
		t.Fatal(err)
	}
	f.ids = ids
	return f
}

func (f *flow) prescription() provision.Request {
	return provision.Request{Request: records.Request{Who: f.s.Doctor, Purpose: "TREAT"}, Recipient: "pharmacy-a",
		PatientID: f.patient.ID, Classes: []string{"medication", "demographics"}}
}

func (f *flow) provide(t *testing.T, r provision.Request) provision.Provided {
	t.Helper()
	p, err := f.s.Provision.Provide(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *flow) hospitalKey(t *testing.T) note.Verifier {
	t.Helper()
	v, err := provision.ParseVerifierKey(f.s.Provision.HospitalKey())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *flow) receipt(t *testing.T, pkg []byte, at time.Time) []byte {
	t.Helper()
	signer, err := provision.ParseSigningKey(f.pharmacy.SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err := provision.MakeReceipt(pkg, signer, "deleted from the dispensing system and its backups", at, f.ids...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestProvideOpenTamperReceipt is the flow: provision → open →
// one-byte tamper detected → receipt → ledger closed.
func TestProvideOpenTamperReceipt(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		f := newFlow(t, b)
		p := f.provide(t, f.prescription())

		opened, err := provision.Open(p.Package, f.hospitalKey(t), f.ids...)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		var bun bundle.Bundle
		if err := json.Unmarshal(opened.Content.Bundle, &bun); err != nil {
			t.Fatal(err)
		}
		// The stack files Observation resources under the medication class.
		if got := resourceTypes(bun); got != "Patient,Observation,Observation" || !bytes.Contains(opened.Content.Bundle, []byte(alice.Name)) {
			t.Errorf("bundle resources %s (want the patient and 2 medication records), name present %v", got, bytes.Contains(opened.Content.Bundle, []byte(alice.Name)))
		}
		if opened.Digest != p.Entry.Digest || opened.Content.Purpose != "TREAT" || !opened.Content.DestroyBy.Equal(p.Entry.Deadline.UTC()) {
			t.Errorf("opened %+v does not match the ledger entry %+v", opened.Header, p.Entry)
		}
		if want := lifecycletest.Start.AddDate(0, 0, 30); !p.Entry.Deadline.Equal(want) {
			t.Errorf("deadline %s, want %s (30 days)", p.Entry.Deadline, want)
		}

		tampered := append([]byte(nil), p.Package...)
		tampered[len(tampered)/2] ^= 0x01
		if _, err := provision.Open(tampered, f.hospitalKey(t), f.ids...); !errors.Is(err, provision.ErrTampered) {
			t.Errorf("one byte changed in the middle: got %v, want ErrTampered", err)
		}

		e, err := f.s.Provision.ImportReceipt(ctx, f.receipt(t, p.Package, f.s.Clock.Now().Add(time.Hour)))
		if err != nil {
			t.Fatalf("import receipt: %v", err)
		}
		if e.State(f.s.Clock.Now()) != provision.StateClosed || e.Receipt == "" {
			t.Errorf("ledger entry %s is %s after its receipt, want closed", e.ID, e.State(f.s.Clock.Now()))
		}
		if _, err := f.s.Provision.ImportReceipt(ctx, f.receipt(t, p.Package, f.s.Clock.Now())); !errors.Is(err, provision.ErrClosed) {
			t.Errorf("second receipt: got %v, want ErrClosed", err)
		}
		disclosures := f.s.EventsWith(t, "provision.disclose", audit.Success)
		if len(disclosures) != 1 || disclosures[0].Resource != "Package/"+p.Entry.ID || !strings.Contains(disclosures[0].Reason, p.Entry.Digest) {
			t.Errorf("disclosure events %+v, want one naming the package and its digest", disclosures)
		}
		noPHIInAudit(t, f.s)
		f.s.VerifyAudit(t)
	})
}

func resourceTypes(b bundle.Bundle) string {
	var out []string
	for _, e := range b.Entry {
		out = append(out, e.Resource["resourceType"].(string))
	}
	return strings.Join(out, ",")
}

func noPHIInAudit(t *testing.T, s *lifecycletest.Stack) {
	t.Helper()
	for _, e := range s.Events(t) {
		raw, _ := json.Marshal(e)
		for _, n := range needles {
			if bytes.Contains(raw, []byte(n)) {
				t.Errorf("audit event %d holds %q: %s", e.Index, n, raw)
			}
		}
	}
}

// TestEveryByteAndCut changes every byte of a package, and cuts it at every
// length: each is refused with a named reason, never opened.
func TestEveryByteAndCut(t *testing.T) {
	f := newFlow(t, lifecycletest.SQLite)
	p := f.provide(t, f.prescription())
	key := f.hospitalKey(t)
	for i := range p.Package {
		bad := append([]byte(nil), p.Package...)
		bad[i] ^= 0x20
		_, err := provision.Open(bad, key, f.ids...)
		if !errors.Is(err, provision.ErrTampered) && !errors.Is(err, provision.ErrWrongSender) && !errors.Is(err, provision.ErrMalformed) && !errors.Is(err, provision.ErrNotForYou) {
			t.Fatalf("byte %d changed: got %v, want a named refusal", i, err)
		}
	}
	for n := range len(p.Package) {
		if _, err := provision.Open(p.Package[:n], key, f.ids...); !errors.Is(err, provision.ErrTruncated) {
			t.Fatalf("cut to %d of %d bytes: got %v, want ErrTruncated", n, len(p.Package), err)
		}
	}
	if _, err := provision.Open(append(p.Package, 'x'), key, f.ids...); !errors.Is(err, provision.ErrTampered) {
		t.Errorf("a byte appended: got %v, want ErrTampered", err)
	}
}

// TestWrongSenderAndRecipient: a package signed by another key, and one
// opened with the wrong identity, are each refused with their reason.
func TestWrongSenderAndRecipient(t *testing.T) {
	f := newFlow(t, lifecycletest.SQLite)
	p := f.provide(t, f.prescription())
	opened, err := provision.Open(p.Package, f.hospitalKey(t), f.ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"medsec-hospital-evil", f.s.Engine.Signer().Name()} {
		forger, err := lifecycle.NewSigner(name, bytes.Repeat([]byte{7}, 32))
		if err != nil {
			t.Fatal(err)
		}
		to, _ := age.ParseX25519Recipient(f.pharmacy.AgeRecipient)
		forged, _, err := provision.Seal(opened.Content, to, forger, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = provision.Open(forged, f.hospitalKey(t), f.ids...)
		if !errors.Is(err, provision.ErrWrongSender) && !errors.Is(err, provision.ErrTampered) {
			t.Errorf("signed by %s: got %v, want ErrWrongSender or ErrTampered", name, err)
		}
		if name != f.s.Engine.Signer().Name() && !errors.Is(err, provision.ErrWrongSender) {
			t.Errorf("signed by another key name: got %v, want ErrWrongSender", err)
		}
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := provision.Open(p.Package, f.hospitalKey(t), other); !errors.Is(err, provision.ErrNotForYou) {
		t.Errorf("wrong identity: got %v, want ErrNotForYou", err)
	}
}

// TestProvideRefusals: every bad request is refused before anything
// leaves, audited, and leaves no ledger entry.
func TestProvideRefusals(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		f := newFlow(t, b)
		f.s.AddRecipient(t, "kdca", provision.KindAgency, provision.Agreement{Purposes: []string{"PUBHLTH"}, Classes: []string{"observation"},
			Form: bundle.Deidentified, Retention: lifecycle.Period{Years: 1}})
		mod := func(fn func(*provision.Request)) provision.Request {
			r := f.prescription()
			fn(&r)
			return r
		}
		cases := []struct {
			name string
			req  provision.Request
			want error
			says string
		}{
			{"unknown recipient", mod(func(r *provision.Request) { r.Recipient = "pharmacy-zz" }), provision.ErrUnknownRecipient, "pharmacy-zz"},
			{"purpose not in the agreement", mod(func(r *provision.Request) { r.Purpose = "HRESCH" }), provision.ErrNotPermitted, `not for "HRESCH"`},
			{"class not in the agreement", mod(func(r *provision.Request) { r.Classes = []string{"note"} }), provision.ErrNotPermitted, `not "note"`},
			{"identified data to an agency", provision.Request{Request: records.Request{Who: f.s.Doctor, Purpose: "PUBHLTH"}, Recipient: "kdca",
				PatientID: f.patient.ID, Classes: []string{"observation"}, Form: bundle.Identified}, provision.ErrNotPermitted, "deidentified data at most"},
			{"no classes", mod(func(r *provision.Request) { r.Classes = nil }), provision.ErrInvalid, "--what"},
			{"policy refuses a doctor who does not treat the patient", mod(func(r *provision.Request) { r.Who = f.s.OtherDoctor }), records.ErrDenied, "access denied"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := refusals(t, f.s)
				_, err := f.s.Provision.Provide(ctx, c.req)
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
				}
				after := refusals(t, f.s)
				if after != before+1 {
					t.Errorf("refusal audited %d times, want once", after-before)
				}
			})
		}
		if es, _ := f.s.Provision.Entries(ctx, provision.Filter{}); len(es) != 0 {
			t.Errorf("refused requests left %d ledger entries", len(es))
		}
		_, err := f.s.Provision.AddRecipient(ctx, lifecycletest.System(), provision.Recipient{ID: "agency-x", Name: "Agency X", Kind: provision.KindAgency,
			AgeRecipient: f.pharmacy.AgeRecipient, ReceiptKey: f.pharmacy.ReceiptKey,
			Agreement: provision.Agreement{Purposes: []string{"PUBHLTH"}, Classes: []string{"observation"}, Form: bundle.Identified, Retention: lifecycle.Period{Years: 1}}})
		if !errors.Is(err, provision.ErrInvalid) || !strings.Contains(err.Error(), "never identified") || !strings.Contains(err.Error(), `named "pharmacy-a"`) {
			t.Errorf("agency with identified data and another's key: got %v", err)
		}
	})
}

// TestReceiptRefusals: a receipt signed by the wrong key, for another
// package, from another recipient, changed after signing, or with an
// impossible date is refused, audited, and the entry stays open.
func TestReceiptRefusals(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, backend lifecycletest.Backend) {
		ctx := context.Background()
		f := newFlow(t, backend)
		a := f.provide(t, f.prescription())
		b := f.provide(t, f.prescription())
		good := f.receipt(t, a.Package, f.s.Clock.Now().Add(time.Hour))
		impostor, err := provision.GenerateRecipientKeys("pharmacy-a")
		if err != nil {
			t.Fatal(err)
		}
		text := func(pkg, sum, recipient, destroyed string) string {
			return "medsec destruction receipt v1\npackage: " + pkg + "\nsha256: " + sum + "\nrecipient: " + recipient +
				"\nhospital: " + f.s.Engine.Signer().Name() + "\ndestroyed: " + destroyed + "\nmethod: shredded\n"
		}
		when := f.s.Clock.Now().Add(time.Hour).Format(time.RFC3339)
		cases := []struct {
			name string
			raw  []byte
			want error
			says string
		}{
			{"signed by the wrong key", sign(t, impostor.SigningKey, text(a.Entry.ID, a.Entry.Digest, "pharmacy-a", when)), provision.ErrBadReceipt, "not signed by the receipt key registered"},
			{"for another package", sign(t, f.pharmacy.SigningKey, text(a.Entry.ID, b.Entry.Digest, "pharmacy-a", when)), provision.ErrBadReceipt, "for another package"},
			{"from another recipient", sign(t, f.pharmacy.SigningKey, text(a.Entry.ID, a.Entry.Digest, "hospital-b", when)), provision.ErrBadReceipt, `names recipient "hospital-b"`},
			{"changed after signing", bytes.Replace(good, []byte("method: deleted"), []byte("method: kept it"), 1), provision.ErrTampered, "does not match its text"},
			{"destroyed before it was sent", sign(t, f.pharmacy.SigningKey, text(a.Entry.ID, a.Entry.Digest, "pharmacy-a", "2020-01-01T00:00:00Z")), provision.ErrBadReceipt, "before it was sent"},
			{"unknown package", sign(t, f.pharmacy.SigningKey, text("pkg_nothere", a.Entry.Digest, "pharmacy-a", when)), provision.ErrUnknownPackage, "pkg_nothere"},
			{"not a receipt", []byte("hello\n"), provision.ErrMalformed, "not a signed receipt"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := len(f.s.EventsWith(t, "provision.receipt", audit.Denied))
				_, err := f.s.Provision.ImportReceipt(ctx, c.raw)
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
				}
				if n := len(f.s.EventsWith(t, "provision.receipt", audit.Denied)); n != before+1 {
					t.Errorf("refusal audited %d times, want once", n-before)
				}
			})
		}
		for _, id := range []string{a.Entry.ID, b.Entry.ID} {
			if e, _ := f.s.Provision.Entry(ctx, id); e.State(f.s.Clock.Now()) != provision.StateOpen {
				t.Errorf("entry %s is %s after refused receipts, want open", id, e.State(f.s.Clock.Now()))
			}
		}
	})
}

// refusals counts refused provisions: by the agreement (provision.disclose)
// or by the policy (an export the door refused).
func refusals(t *testing.T, s *lifecycletest.Stack) int {
	n := 0
	for _, e := range s.Events(t) {
		if e.Outcome == audit.Denied && (e.Action == "provision.disclose" || strings.HasSuffix(e.Action, ".export")) {
			n++
		}
	}
	return n
}

func sign(t *testing.T, skey, text string) []byte {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAgencyForms: an agency receives de-identified or aggregated data,
// with nothing identifying in it.
func TestAgencyForms(t *testing.T) {
	f := newFlow(t, lifecycletest.SQLite)
	ctx := context.Background()
	for _, form := range []string{bundle.Deidentified, bundle.Aggregated} {
		id := "agency-" + form[:4]
		k := f.s.AddRecipient(t, id, provision.KindAgency, provision.Agreement{Purposes: []string{"PUBHLTH"},
			Classes: []string{"demographics", "observation"}, Form: form, Retention: lifecycle.Period{Years: 1}})
		p, err := f.s.Provision.Provide(ctx, provision.Request{Request: records.Request{Who: f.s.Doctor, Purpose: "PUBHLTH"}, Recipient: id,
			PatientID: f.patient.ID, Classes: []string{"demographics", "observation"}, Basis: "Infectious Disease Control and Prevention Act Art. 11"})
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := provision.ParseIdentities(k.AgeIdentity)
		opened, err := provision.Open(p.Package, f.hospitalKey(t), ids...)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range append(needles, f.patient.Pseudonym, f.patient.ID, "1990-01-01") {
			if bytes.Contains(opened.Content.Bundle, []byte(n)) {
				t.Errorf("%s bundle holds %q", form, n)
			}
		}
		var b bundle.Bundle
		json.Unmarshal(opened.Content.Bundle, &b)
		got := resourceTypes(b)
		want := map[string]string{bundle.Deidentified: "Patient,Observation,Observation,Observation", bundle.Aggregated: "MeasureReport"}[form]
		if got != want || b.Meta == nil || len(b.Meta.Security) != 1 {
			t.Errorf("%s bundle: resources %s (want %s), meta %+v", form, got, want, b.Meta)
		}
		if p.Entry.Basis == "" || p.Entry.Form != form {
			t.Errorf("ledger entry %+v lacks the basis or form", p.Entry)
		}
	}
}

// TestOverdueAlert: a package past its deadline without a receipt raises
// one alert (the clock is moved), which the receipt clears.
func TestOverdueAlert(t *testing.T) {
	lifecycletest.Each(t, func(t *testing.T, b lifecycletest.Backend) {
		ctx := context.Background()
		f := newFlow(t, b)
		p := f.provide(t, f.prescription())
		f.s.Clock.Advance(29 * 24 * time.Hour)
		if over, err := f.s.Provision.CheckOverdue(ctx); err != nil || len(over) != 0 {
			t.Fatalf("day 29: %d overdue, %v; want none", len(over), err)
		}
		f.s.Clock.Advance(2 * 24 * time.Hour)
		for range 2 {
			if over, err := f.s.Provision.CheckOverdue(ctx); err != nil || len(over) != 1 || over[0].ID != p.Entry.ID {
				t.Fatalf("day 31: overdue %v, %v; want the package", over, err)
			}
		}
		open := overdueAlerts(t, f.s)
		if len(open) != 1 || open[0].Subject != p.Entry.ID || open[0].Patient != f.patient.Pseudonym {
			t.Fatalf("overdue alerts %+v, want one for %s", open, p.Entry.ID)
		}
		locs, _ := f.s.Provision.Locations(ctx, lifecycle.Subject{Pseudonym: f.patient.Pseudonym})
		if len(locs) != 1 || !strings.HasPrefix(locs[0].State, "OVERDUE") {
			t.Errorf("trace location %+v, want OVERDUE", locs)
		}
		if _, err := f.s.Provision.ImportReceipt(ctx, f.receipt(t, p.Package, f.s.Clock.Now())); err != nil {
			t.Fatal(err)
		}
		late, _ := f.s.H.Alerts.List(ctx, alerts.Filter{OpenOnly: true, Kind: alerts.KindProvision})
		if len(late) != 1 || late[0].Subject != p.Entry.ID || late[0].Severity != alerts.Info {
			t.Errorf("after the late receipt: %+v, want one note that the overdue alert can be acknowledged", late)
		}
		f.s.VerifyAudit(t)
	})
}

func overdueAlerts(t *testing.T, s *lifecycletest.Stack) []alerts.Alert {
	t.Helper()
	as, err := s.H.Alerts.List(context.Background(), alerts.Filter{OpenOnly: true, Kind: alerts.KindOverdue})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestDigestIsOfTheFile(t *testing.T) {
	f := newFlow(t, lifecycletest.SQLite)
	p := f.provide(t, f.prescription())
	sum := sha256.Sum256(p.Package)
	if p.Entry.Digest != hex.EncodeToString(sum[:]) || p.Entry.Size != int64(len(p.Package)) {
		t.Errorf("ledger digest %s size %d, want SHA-256 and size of the file", p.Entry.Digest, p.Entry.Size)
	}
}
