package identity

import (
	"bufio"
	_ "embed"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// The password policy follows NIST SP 800-63B (rev. 4, §3.1.1.2), which asks
// for at least 8 characters when the password is one of two factors and 15
// when it is the only one. medsec asks everyone for 12 and requires a second
// factor of privileged roles; at most 128; no composition rules; a list of
// common and breached passwords and the user's own names are refused.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// ErrWeakPassword means the password fails the policy; the message says why.
var ErrWeakPassword = errors.New("password refused")

//go:embed common-passwords.txt
var commonPasswordsText string

var commonPasswords = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		w := strings.TrimSpace(sc.Text())
		if w != "" && !strings.HasPrefix(w, "#") {
			m[strings.ToLower(w)] = true
		}
	}
	return m
})

// CheckPassword applies the policy; the error says what to change.
func CheckPassword(pw string, names ...string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: it is not valid text", ErrWeakPassword)
	case n < MinPasswordLen:
		return fmt.Errorf("%w: use at least %d characters (a few unrelated words make a good one)", ErrWeakPassword, MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Errorf("%w: use at most %d characters", ErrWeakPassword, MaxPasswordLen)
	}
	low := strings.ToLower(pw)
	if commonPasswords()[low] || repetitive(low) {
		return fmt.Errorf("%w: it is on the list of common or breached passwords", ErrWeakPassword)
	}
	for _, name := range names {
		name = strings.ToLower(strings.TrimSpace(name))
		if len(name) >= 4 && strings.Contains(low, name) {
			return fmt.Errorf("%w: it contains your user name or name", ErrWeakPassword)
		}
	}
	return nil
}

// repetitive catches "aaaaaaaaaaaa" and "abcabcabcabc": few distinct
// characters for the length.
func repetitive(pw string) bool {
	seen := map[rune]bool{}
	for _, r := range pw {
		seen[r] = true
	}
	return len(seen) <= 3
}
