package identity

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseToken: the bearer-token parser never panics, and what it
// accepts is exactly the canonical encoding of the bytes it returns.
func FuzzParseToken(f *testing.F) {
	_, tok := newToken()
	for _, s := range []string{tok, "", tokenPrefix, tokenPrefix + strings.Repeat("A", 43), "Bearer " + tok, tok + "=", strings.ToUpper(tok)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := ParseToken(s)
		if err != nil {
			return
		}
		if again := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:]); again != s {
			t.Fatalf("accepted %q, which is not the canonical %q", s, again)
		}
	})
}

// FuzzParseTOTPCode: a code is accepted only as six ASCII digits, and
// normalizing is idempotent.
func FuzzParseTOTPCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "12-34-56", "", "abcdef", "１２３４５６", "1234567", "\x00123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ParseTOTPCode(s)
		if err != nil {
			return
		}
		if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("ParseTOTPCode(%q) = %q, not six digits", s, code)
		}
		if again, err := ParseTOTPCode(code); err != nil || again != code {
			t.Fatalf("not idempotent: %q -> %q (%v)", code, again, err)
		}
	})
}

// FuzzMapClaims: ID-token claims from an identity provider never panic the
// mapper, and an accepted mapping always fits an account.
func FuzzMapClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"1","groups":["N"],"dept":"surgery","email":"a@b.c","amr":["pwd","otp"]}`,
		`{"sub":"1","groups":"N","preferred_username":"Dr.Kim"}`,
		`{"sub":"1","groups":["N","P"]}`,
		`{"sub":"","groups":"N"}`,
		`{"sub":"x","groups":[null,1,{"a":"N"}],"name":"\u0000"}`,
		`[]`, `null`, `{"sub":`,
	} {
		f.Add([]byte(s))
	}
	m := ClaimMapping{RoleClaim: "groups", DepartmentClaim: "dept", Roles: map[string]string{"N": RoleNurse, "P": RolePhysician, "A": RoleITAdmin}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := m.Map(raw)
		if err != nil {
			return
		}
		if !validRole(got.Role) || got.Role == RoleITAdmin {
			t.Fatalf("mapped to role %q", got.Role)
		}
		if err := CheckUsername(got.Username); err != nil {
			t.Fatalf("mapped to an invalid user name: %v", err)
		}
		if err := checkProfile(Profile{DisplayName: got.DisplayName, Department: got.Department}); err != nil {
			t.Fatalf("mapped to an invalid profile: %v", err)
		}
		if got.Subject == "" || len(got.Subject) > 255 || !utf8.ValidString(got.Subject) && !printable(got.Subject) {
			t.Fatalf("mapped subject %q", got.Subject)
		}
	})
}
