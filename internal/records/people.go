package records

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// Same-surname and co-worker checks (issue 4 item 8: staff reading a
// namesake's or a co-worker's record) without plaintext: both sides keep a
// keyed digest of the surname (the door's blind-index key), and the policy
// only learns whether the two digests are equal.

// koreanDoubleSurnames are the two-syllable Korean family names; every
// other Hangul name starts with a one-syllable surname.
var koreanDoubleSurnames = []string{"남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "어금", "망절"}

// SurnameOf guesses the family name in a full name: "Family, Given" has it
// before the comma; a Hangul name starts with it (one syllable, or two for
// the double surnames); any other name ends with it.
func SurnameOf(name string) string {
	name = strings.TrimSpace(name)
	if i := strings.IndexByte(name, ','); i > 0 {
		return strings.TrimSpace(name[:i])
	}
	fields := strings.Fields(name)
	if len(fields) == 0 {
		return ""
	}
	if r := []rune(fields[0]); unicode.Is(unicode.Hangul, r[0]) {
		if len(fields) > 1 {
			return fields[0]
		}
		for _, d := range koreanDoubleSurnames {
			if strings.HasPrefix(fields[0], d) && len(r) > 2 {
				return d
			}
		}
		return string(r[0])
	}
	return fields[len(fields)-1]
}

func (d *Door) surnameDigest(surname string) []byte {
	s := strings.ToUpper(strings.TrimSpace(surname))
	if s == "" {
		return nil
	}
	return d.blindIndex("surname", s)
}

// SetStaffSurname records the digest of a staff member's surname so that
// their reads of a namesake's record are flagged. The staff member, an IT
// administrator or the registration desk may; the change is audited.
func (d *Door) SetStaffSurname(ctx context.Context, by identity.Principal, staffID, surname string) error {
	if !by.Verified() {
		return ErrUnauthenticated
	}
	if by.ID != staffID && by.Role != identity.RoleITAdmin && by.Role != identity.RoleAdministrative {
		return fmt.Errorf("%w: only the staff member, an IT administrator or the registration desk records a surname", ErrDenied)
	}
	digest := d.surnameDigest(surname)
	if digest == nil || len(surname) > 200 {
		return fmt.Errorf("%w: a surname of 1 to 200 bytes is needed", ErrInvalid)
	}
	err := d.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM staff_surnames WHERE staff_id = ?`, staffID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO staff_surnames (staff_id, digest) VALUES (?, ?)`, staffID, digest); err != nil {
			return err
		}
		_, err := d.log.AppendTx(ctx, tx, audit.Event{Time: d.now(), Actor: by.ID, Role: by.Role, Action: "staff.surname",
			Resource: "Staff/" + staffID, Outcome: audit.Success, Source: by.Source, Reason: "surname digest recorded for same-surname checks"})
		return err
	})
	if err != nil {
		return fmt.Errorf("record surname of %s: %w", staffID, err)
	}
	d.surnames.forget(staffID)
	return nil
}

// surnameCache keeps staff surname digests for a minute, so that a decision
// costs no extra query; a change on another replica shows within that time.
type surnameCache struct {
	mu sync.Mutex
	m  map[string]surnameEntry
}

type surnameEntry struct {
	digest []byte
	at     time.Time
}

const surnameTTL = time.Minute

func (c *surnameCache) get(ctx context.Context, q store.Querier, staffID string) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.m[staffID]
	c.mu.Unlock()
	if ok && time.Since(e.at) < surnameTTL {
		return e.digest, nil
	}
	var digest []byte
	err := q.QueryRow(ctx, `SELECT digest FROM staff_surnames WHERE staff_id = ?`, staffID).Scan(&digest)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read staff surname: %w", err)
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]surnameEntry{}
	}
	c.m[staffID] = surnameEntry{digest: digest, at: time.Now()}
	c.mu.Unlock()
	return digest, nil
}

func (c *surnameCache) forget(staffID string) {
	c.mu.Lock()
	delete(c.m, staffID)
	c.mu.Unlock()
}

// SameSurname reports whether the staff member's recorded surname matches
// the patient's (for `medsec policy explain`; the door checks it itself).
func (d *Door) SameSurname(ctx context.Context, staffID string, f *PatientFacts) (bool, error) {
	if len(f.surname) == 0 {
		return false, nil
	}
	staff, err := d.surnames.get(ctx, d.db, staffID)
	return len(staff) > 0 && hmac.Equal(staff, f.surname), err
}
