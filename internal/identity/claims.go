package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ErrSSORefused means the identity provider's answer did not give an
// account this hospital accepts (no allowed role, an ambiguous role, an
// unknown subject where provisioning is off). The message says which; an
// administrator fixes the claim mapping or links the account.
var ErrSSORefused = errors.New("identity provider's answer not accepted")

// ClaimMapping turns an identity provider's ID-token claims into a role and
// department.
type ClaimMapping struct {
	// RoleClaim names the claim holding roles or groups (a string or a
	// list of strings); default "roles".
	RoleClaim string `yaml:"role_claim"`
	// DepartmentClaim names the claim holding the department ("" for none).
	DepartmentClaim string `yaml:"department_claim"`
	// Roles maps claim values to medsec roles ("Ward-Nurses": "nurse").
	Roles map[string]string `yaml:"roles"`
	// AllowedRoles are the roles single sign-on may give. Default: every
	// role that is not privileged. Listing a privileged role hands its
	// two-person approval to the identity provider.
	AllowedRoles []string `yaml:"allowed_roles"`
	// MFAValues are the "amr" values (RFC 8176) that mean the provider
	// checked a second factor; default mfa, otp, hwk, sc.
	MFAValues []string `yaml:"mfa_values"`
}

// MappedClaims is what medsec takes from an ID token.
type MappedClaims struct {
	Subject     string
	Username    string // a valid medsec user name derived from the token
	DisplayName string
	Role        string
	Department  string
	MFA         bool
}

// maxClaimsSize caps the claims an ID token may carry.
const maxClaimsSize = 16 << 10

// Map reads ID-token claims (JSON) and maps them. It refuses a token
// without a subject, with no allowed role, or with several.
func (m ClaimMapping) Map(raw []byte) (MappedClaims, error) {
	if len(raw) > maxClaimsSize {
		return MappedClaims{}, fmt.Errorf("%w: the ID token's claims are larger than %d bytes", ErrSSORefused, maxClaimsSize)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return MappedClaims{}, fmt.Errorf("%w: unreadable claims", ErrSSORefused)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" || len(sub) > 255 || !printable(sub) {
		return MappedClaims{}, fmt.Errorf("%w: the ID token has no usable subject", ErrSSORefused)
	}
	role, err := m.role(claims)
	if err != nil {
		return MappedClaims{}, err
	}
	mc := MappedClaims{Subject: sub, Role: role, MFA: m.mfa(claims)}
	mc.Department = cleanField(stringClaim(claims, m.DepartmentClaim), MaxFieldLen)
	mc.Username = ssoUsername(claims, sub)
	mc.DisplayName = cleanField(stringClaim(claims, "name"), MaxNameLen)
	if mc.DisplayName == "" {
		mc.DisplayName = mc.Username
	}
	return mc, nil
}

func (m ClaimMapping) role(claims map[string]any) (string, error) {
	name := m.RoleClaim
	if name == "" {
		name = "roles"
	}
	allowed := m.AllowedRoles
	if len(allowed) == 0 {
		allowed = slices.DeleteFunc(slices.Clone(Roles), func(r string) bool { return slices.Contains(PrivilegedRoles, r) })
	}
	var got []string
	for _, v := range stringsClaim(claims, name) {
		if r, ok := m.Roles[v]; ok && validRole(r) && slices.Contains(allowed, r) && !slices.Contains(got, r) {
			got = append(got, r)
		}
	}
	switch len(got) {
	case 1:
		return got[0], nil
	case 0:
		return "", fmt.Errorf("%w: the %q claim gives no role this hospital allows through single sign-on", ErrSSORefused, name)
	}
	sort.Strings(got)
	return "", fmt.Errorf("%w: the %q claim gives several roles (%s); map it to one", ErrSSORefused, name, strings.Join(got, ", "))
}

func (m ClaimMapping) mfa(claims map[string]any) bool {
	want := m.MFAValues
	if len(want) == 0 {
		want = []string{"mfa", "otp", "hwk", "sc"}
	}
	for _, v := range stringsClaim(claims, "amr") {
		if slices.Contains(want, v) {
			return true
		}
	}
	return false
}

// stringsClaim reads a claim that is a string or a list of strings (at
// most 100 values; others ignored).
func stringsClaim(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v[:min(len(v), 100)] {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func stringClaim(claims map[string]any, name string) string {
	if name == "" {
		return ""
	}
	s, _ := claims[name].(string)
	return s
}

// cleanField keeps a claim only if it fits a staff field.
func cleanField(s string, max int) string {
	if len(s) > max || !printable(s) {
		return ""
	}
	return strings.TrimSpace(s)
}

// ssoUsername derives a user name from preferred_username or email, or
// from the subject when neither fits.
func ssoUsername(claims map[string]any, sub string) string {
	for _, c := range []string{"preferred_username", "email"} {
		s := strings.ToLower(stringClaim(claims, c))
		s, _, _ = strings.Cut(s, "@")
		if CheckUsername(s) == nil {
			return s
		}
	}
	sum := sha256.Sum256([]byte(sub))
	return "sso." + hex.EncodeToString(sum[:6])
}
