package hospital

import (
	"context"
	"slices"
	"testing"

	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/records"
)

// TestExplain decides the cases with the shipped policy through
// the same adapter the door uses.
func TestExplain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pass := []byte("test passphrase")
	if _, err := Init(ctx, InitOptions{Dir: dir, Profile: "small", HospitalName: "t", Passphrase: pass,
		AdminPassword: "violet harbor lantern 1986", KDF: keys.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}}); err != nil {
		t.Fatal(err)
	}
	h, err := Open(ctx, dir, OpenOptions{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Staff.HashParams = identity.HashParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	const pw = "violet harbor lantern 2026"
	for _, n := range []identity.NewStaff{
		{Username: "desk", DisplayName: "Desk", Role: identity.RoleAdministrative, Password: pw},
		{Username: "dr.kim", DisplayName: "Dr. Kim", Role: identity.RolePhysician, Department: "im", Password: pw},
		{Username: "nurse.park", DisplayName: "Nurse Park", Role: identity.RoleNurse, Wards: []string{"7B"}, Password: pw},
	} {
		if _, err := h.Staff.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	desk, _ := h.Staff.Authenticate(ctx, "desk", pw, "test")
	kim, _ := h.Staff.Lookup(ctx, "dr.kim")
	p, err := h.Door.RegisterPatient(ctx, records.Request{Who: desk, Purpose: "TREAT"}, records.Patient{Name: "Jane Roe", Department: "im", Ward: "5A", Attending: kim.ID})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		x          ExplainRequest
		allow      bool
		policy     string
		breakGlass bool
	}{
		{"nurse outside her ward", ExplainRequest{Username: "nurse.park", Action: "read", Class: "observation", Purpose: "TREAT"}, false, "nurse-outside-ward", false},
		{"attending physician", ExplainRequest{Username: "dr.kim", Action: "read", Class: "observation", Purpose: "TREAT"}, true, "physician-attending", false},
		{"break-glass", ExplainRequest{Username: "nurse.park", Action: "read", Class: "observation", Purpose: "ETREAT", BreakGlass: "collapsed"}, true, "break-glass-clinician", true},
		{"research without consent", ExplainRequest{Username: "dr.kim", Action: "read", Class: "observation", Purpose: "HRESCH"}, false, "purpose-needs-consent", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.x.PatientID = p.ID
			d, err := h.Explain(ctx, tt.x)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow || !slices.Contains(d.Policies, tt.policy) || d.HasFlag("break-glass") != tt.breakGlass {
				t.Errorf("got %s\nwant allow %v by %s, break-glass flag %v", d.Explain(), tt.allow, tt.policy, tt.breakGlass)
			}
		})
	}
}
