package access

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/medsec/medsec/policies"
)

// shippedFS copies the shipped policy directory into a MapFS the test can
// change.
func shippedFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	entries, err := fs.ReadDir(policies.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(policies.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: data}
	}
	return m
}

// withFile returns the shipped directory plus one extra policy file.
func withFile(t *testing.T, name, text string) fstest.MapFS {
	t.Helper()
	m := shippedFS(t)
	m[name] = &fstest.MapFile{Data: []byte(text)}
	return m
}

// withEdit returns the shipped directory with old replaced by new in file.
func withEdit(t *testing.T, file, old, new string) fstest.MapFS {
	t.Helper()
	m := shippedFS(t)
	text := string(m[file].Data)
	if !strings.Contains(text, old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	m[file] = &fstest.MapFile{Data: []byte(strings.Replace(text, old, new, 1))}
	return m
}

const goodPolicy = `@id("extra")
@reason("test")
permit (principal, action, resource)
when {
  principal.role == Role::"physician" &&
  context.purpose == Purpose::"TREAT"
};
`

// policyWith puts cond on line 6 of a policy file.
func policyWith(cond string) string {
	return "// extra policy\n@id(\"extra\")\n@reason(\"test\")\npermit (principal, action, resource)\nwhen {\n  " + cond + "\n};\n"
}

func TestLoadShipped(t *testing.T) {
	e := loadShipped(t)
	infos := e.Policies()
	if len(infos) < 20 {
		t.Errorf("got %d policies, want at least 20", len(infos))
	}
	for _, p := range infos {
		if p.ID == "" || p.Reason == "" || p.File == "" || p.Line == 0 {
			t.Errorf("policy %+v lacks id, reason or position", p)
		}
	}
	if _, err := Load(withFile(t, "extra.cedar", goodPolicy)); err != nil {
		t.Errorf("a valid extra policy: got %v, want no error", err)
	}
	// A hospital overrides the shipped policies with a directory.
	fromDir, err := Load(os.DirFS("../../policies"))
	if err != nil {
		t.Fatalf("load the policies directory: %v", err)
	}
	if diff := cmp.Diff(infos, fromDir.Policies()); diff != "" {
		t.Errorf("directory and embedded policies differ (-embedded +directory):\n%s", diff)
	}
}

func TestShippedFlags(t *testing.T) {
	var got []string
	for _, p := range loadShipped(t).Policies() {
		got = append(got, p.Flags...)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want := []string{FlagBreakGlass, FlagCoWorker, FlagDeidentifiedOnly, FlagGrant, FlagLegalBasis,
		FlagReview, FlagSameSurname, FlagSensitive, FlagVIP}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flags of the shipped policies (-want +got):\n%s", diff)
	}
}

func TestLoadRefusesBadPolicy(t *testing.T) {
	tests := []struct {
		name     string
		fsys     func(t *testing.T) fstest.MapFS
		wantFile string
		wantLine int // 0: any line; -1: the line of the attribute mfa
		wantText string
	}{
		{"syntax error", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("principal.role == "))
		}, "extra.cedar", 7, "parse error"},
		{"unterminated string", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith(`principal.department == "cardio`))
		}, "extra.cedar", 6, "literal not terminated"},
		{"unknown attribute", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("principal.rol == Role::\"nurse\""))
		}, "extra.cedar", 6, "attribute `rol`"},
		{"unknown attribute of patient", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("resource.wards.contains(\"5W\")"))
		}, "extra.cedar", 6, "wards"},
		{"unknown context key", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("context.purpse == Purpose::\"TREAT\""))
		}, "extra.cedar", 6, "purpse"},
		{"unknown entity type in scope", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\n@reason(\"test\")\npermit (principal is Doctor, action, resource);\n")
		}, "extra.cedar", 3, "Doctor"},
		{"unknown entity type in condition", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("resource.care_team.contains(Doctor::\"kim\")"))
		}, "extra.cedar", 6, "Doctor"},
		{"enum typo", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("principal.role == Role::\"nures\""))
		}, "extra.cedar", 6, "nures"},
		{"unknown action", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("action == Action::\"raed\""))
		}, "extra.cedar", 6, "raed"},
		{"type mismatch", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("context.purpose == \"TREAT\""))
		}, "extra.cedar", 2, "not compatible"},
		{"optional attribute without has", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", policyWith("resource.attending == principal"))
		}, "extra.cedar", 6, "attending"},
		{"missing id", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "\n@reason(\"test\")\npermit (principal, action, resource);\n")
		}, "extra.cedar", 2, "missing @id"},
		{"missing reason", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\nforbid (principal, action, resource);\n")
		}, "extra.cedar", 1, "missing @reason"},
		{"duplicate id", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"nurse-ward\")\n@reason(\"test\")\npermit (principal, action, resource);\n")
		}, "extra.cedar", 1, "duplicate @id, first used at clinical.cedar"},
		{"misspelt annotation", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\n@reason(\"test\")\n@flags(\"vip\")\npermit (principal, action, resource);\n")
		}, "extra.cedar", 1, "unknown annotation @flags"},
		{"flag on a forbid", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\n@reason(\"test\")\n@flag(\"vip\")\nforbid (principal, action, resource);\n")
		}, "extra.cedar", 1, "must be a permit"},
		{"bad on", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\n@reason(\"test\")\n@flag(\"vip\")\n@on(\"sometimes\")\npermit (principal, action, resource);\n")
		}, "extra.cedar", 1, "@on must be"},
		{"on without flag", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\n@reason(\"test\")\n@on(\"deny\")\npermit (principal, action, resource);\n")
		}, "extra.cedar", 1, "only for flag policies"},
		{"bad flag name", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "@id(\"extra\")\n@reason(\"test\")\n@flag(\"VIP access\")\npermit (principal, action, resource);\n")
		}, "extra.cedar", 1, "flag names"},
		{"empty policy file", func(t *testing.T) fstest.MapFS {
			return withFile(t, "extra.cedar", "// nothing here\n")
		}, "extra.cedar", 0, "no policies"},
		{"schema syntax error", func(t *testing.T) fstest.MapFS {
			return withEdit(t, "medsec.cedarschema", "  mfa: Bool,", "  mfa Bool,")
		}, "medsec.cedarschema", -1, "expected ':'"},
		{"schema undefined type", func(t *testing.T) fstest.MapFS {
			return withEdit(t, "medsec.cedarschema", "  mfa: Bool,", "  mfa: Flag,")
		}, "medsec.cedarschema", -1, "Flag"},
		{"schema lacks an attribute medsec sends", func(t *testing.T) fstest.MapFS {
			return withEdit(t, "medsec.cedarschema", "  position: String,\n", "")
		}, "medsec.cedarschema", 0, "does not describe the requests"},
		{"schema lacks a label medsec sends", func(t *testing.T) fstest.MapFS {
			return withEdit(t, "medsec.cedarschema", "  \"genetics\",\n", "")
		}, "medsec.cedarschema", 0, `lacks "genetics"`},
		{"schema lacks an action medsec sends", func(t *testing.T) fstest.MapFS {
			return withEdit(t, "medsec.cedarschema", "action break_glass appliesTo", "action break_the_glass appliesTo")
		}, "medsec.cedarschema", 0, "does not describe the requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.fsys(t)
			if tt.wantLine == -1 {
				text := string(m[tt.wantFile].Data)
				tt.wantLine = 1 + strings.Count(text[:strings.Index(text, "  mfa")], "\n")
			}
			_, err := Load(m)
			checkPolicyError(t, err, tt.wantFile, tt.wantLine, tt.wantText)
		})
	}
}

// checkPolicyError finds a *PolicyError for wantFile among err's errors and
// checks its line (when wantLine > 0) and text.
func checkPolicyError(t *testing.T, err error, wantFile string, wantLine int, wantText string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error in %s", wantFile)
	}
	for _, e := range flatten(err) {
		var pe *PolicyError
		if !errors.As(e, &pe) || pe.File != wantFile || !strings.Contains(pe.Error(), wantText) {
			continue
		}
		if wantLine > 0 && pe.Line != wantLine {
			t.Errorf("got line %d, want %d: %v", pe.Line, wantLine, pe)
		}
		if pe.Line == 0 && wantLine > 0 {
			t.Errorf("error has no line: %v", pe)
		}
		return
	}
	t.Errorf("got %v, want a *PolicyError in %s saying %q", err, wantFile, wantText)
}

func TestLoadPointsAtTheLine(t *testing.T) {
	// A typo deep in a shipped file is reported at its own line, not at the
	// start of the policy, nor at a comment or annotation naming the same
	// word.
	tests := []struct{ file, old, new, marker, wantText string }{
		{"limits.cedar", "!principal.wards.contains(resource.ward)", "!principal.wards.contains(resource.wrd)", "resource.wrd", "wrd"},
		{"clinical.cedar", "principal.wards.contains(resource.ward)", "principal.ward.contains(resource.ward)", "principal.ward.", "attribute `ward`"},
		{"consent.cedar", `context.purpose == Purpose::"PUBHLTH" && context.legal_basis`, `context.purpose == Purpose::"PUBHLTH" && context.legal_basys`, "legal_basys", "legal_basys"},
		{"consent.cedar", `context.purpose == Purpose::"PUBHLTH" && context.legal_basis`, `context.purpose == Purpose::"PUBLHTH" && context.legal_basis`, "PUBLHTH", "PUBLHTH"},
		{"flags.cedar", `labels.contains(Label::"vip")`, `labels.contains(Label::"vipp")`, "vipp", "vipp"},
	}
	for _, tt := range tests {
		t.Run(tt.wantText, func(t *testing.T) {
			m := withEdit(t, tt.file, tt.old, tt.new)
			text := string(m[tt.file].Data)
			want := 1 + strings.Count(text[:strings.Index(text, tt.marker)], "\n")
			_, err := Load(m)
			checkPolicyError(t, err, tt.file, want, tt.wantText)
		})
	}
}

func TestLoadDirectoryShape(t *testing.T) {
	tests := []struct {
		name string
		edit func(m fstest.MapFS)
		want string
	}{
		{"no schema", func(m fstest.MapFS) { delete(m, "medsec.cedarschema") }, "exactly one .cedarschema"},
		{"two schemas", func(m fstest.MapFS) { m["other.cedarschema"] = m["medsec.cedarschema"] }, "exactly one .cedarschema"},
		{"no policies", func(m fstest.MapFS) {
			for name := range m {
				if strings.HasSuffix(name, ".cedar") {
					delete(m, name)
				}
			}
		}, "no .cedar policy files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := shippedFS(t)
			tt.edit(m)
			_, err := Load(m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	m := withFile(t, "extra.cedar", policyWith("principal.rol == Role::\"nurse\""))
	m["more.cedar"] = &fstest.MapFile{Data: []byte(policyWith("context.purpse == Purpose::\"TREAT\"") + "\n")}
	_, err := Load(m)
	checkPolicyError(t, err, "extra.cedar", 6, "rol")
	checkPolicyError(t, err, "more.cedar", 6, "purpse")
}
