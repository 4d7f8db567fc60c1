package access

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzLoad feeds arbitrary policy text to Load beside the shipped schema.
// Load must never panic; a refusal must be a *PolicyError naming the file;
// an accepted policy set must decide without panicking.
//
// Each input loads the schema too (a few milliseconds), so minimising every
// new input for the default minute stalls the run; use
//
//	go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 60s -fuzzminimizetime 1x ./internal/access
func FuzzLoad(f *testing.F) {
	shipped := shippedFS(f)
	for name, file := range shipped {
		if strings.HasSuffix(name, ".cedar") {
			f.Add(string(file.Data))
		}
	}
	schema := shipped["medsec.cedarschema"]
	f.Fuzz(func(t *testing.T, text string) {
		fsys := fstest.MapFS{
			"medsec.cedarschema": schema,
			"fuzz.cedar":         &fstest.MapFile{Data: []byte(text)},
		}
		e, err := Load(fsys)
		if err != nil {
			checkFuzzError(t, err, "fuzz.cedar")
			return
		}
		for _, r := range probeRequests() {
			_ = e.Decide(r)
		}
	})
}

// FuzzLoadSchema feeds arbitrary schema text to Load beside the shipped
// policies, with the same promises as FuzzLoad.
func FuzzLoadSchema(f *testing.F) {
	shipped := shippedFS(f)
	f.Add(string(shipped["medsec.cedarschema"].Data))
	f.Fuzz(func(t *testing.T, text string) {
		fsys := shippedFS(t)
		fsys["medsec.cedarschema"] = &fstest.MapFile{Data: []byte(text)}
		e, err := Load(fsys)
		if err != nil {
			checkFuzzError(t, err, "")
			return
		}
		for _, r := range probeRequests() {
			_ = e.Decide(r)
		}
	})
}

// checkFuzzError demands that every problem Load reports is a *PolicyError
// with a reason, in file when file is not empty.
func checkFuzzError(t *testing.T, err error, file string) {
	t.Helper()
	for _, e := range flatten(err) {
		var pe *PolicyError
		if !errors.As(e, &pe) {
			t.Fatalf("got %T %v, want a *PolicyError", e, e)
		}
		if pe.Reason == "" {
			t.Fatalf("policy error without a reason: %+v", pe)
		}
		if file != "" && pe.File != file && pe.File != "medsec.cedarschema" {
			t.Fatalf("got error in %q, want in %q: %v", pe.File, file, pe)
		}
	}
}
