package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// Waiting-room screens are enrolled: the security officer or the IT
// administrator enrols a screen for one department and gets a long random
// token, shown once (only its SHA-256 is kept). The screen opens
// /display/{department}?screen=TOKEN once; the console keeps the token in
// a cookie and sends it on to /display/{department}. Without a valid,
// unrevoked token for that department the display answers 404, so a
// masked queue is not for anyone who can reach the host.

// displayCookie holds an enrolled screen's token.
const displayCookie = "__Host-medsec-display"

// displayCookieAge is the longest a browser keeps a cookie (400 days).
const displayCookieAge = 400 * 24 * 3600

const displayTokenPrefix = "msd1_"

// displayRoles may enrol and revoke screens.
var displayRoles = []string{identity.RoleSecurityOfficer, identity.RoleITAdmin}

// Display is an enrolled waiting-room screen.
type Display struct {
	ID, Department, Label, EnrolledBy string
	Created                           time.Time
}

// DisplayEnrolment is a new screen with its token, shown once.
type DisplayEnrolment struct {
	Display
	Token string
	// Path is the address the screen opens once (token included).
	Path string
}

// EnrolDisplay enrols a waiting-room screen for department.
func (c *Console) EnrolDisplay(ctx context.Context, who identity.Principal, department, label string) (DisplayEnrolment, error) {
	if !slices.Contains(displayRoles, who.Role) {
		return DisplayEnrolment{}, fmt.Errorf("%w: only the security officer or the IT administrator enrols a waiting-room screen", identity.ErrForbidden)
	}
	if err := checkDepartment(department); err != nil {
		return DisplayEnrolment{}, err
	}
	label, err := checkLabel(label)
	if err != nil {
		return DisplayEnrolment{}, err
	}
	d := DisplayEnrolment{Display: Display{ID: "ds_" + randomHex(8), Department: department, Label: label, EnrolledBy: who.ID, Created: c.now()},
		Token: displayTokenPrefix + randomToken()}
	d.Path = "/display/" + department + "?screen=" + d.Token
	err = c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO console_displays (id, department, label, token_hash, enrolled_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			d.ID, d.Department, d.Label, displayTokenHash(d.Token), who.ID, d.Created.UnixNano()); err != nil {
			return err
		}
		_, err := c.h.Audit.AppendTx(ctx, tx, staffEvent(who, "display.enrol", "", "Display/"+d.ID,
			fmt.Sprintf("waiting-room screen enrolled for %s", department)))
		return err
	})
	if err != nil {
		return DisplayEnrolment{}, fmt.Errorf("enrol display: %w", err)
	}
	return d, nil
}

// checkLabel bounds the note that says where a screen hangs.
func checkLabel(label string) (string, error) {
	label = strings.TrimSpace(label)
	if len(label) > 80 || strings.ContainsFunc(label, unicode.IsControl) {
		return "", fmt.Errorf("%w: the screen's place: at most 80 characters, no control characters", errInvalid)
	}
	return label, nil
}

func displayTokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// RevokeDisplay ends a screen's enrolment: it shows nothing any more.
func (c *Console) RevokeDisplay(ctx context.Context, who identity.Principal, id string) error {
	if !slices.Contains(displayRoles, who.Role) {
		return fmt.Errorf("%w: only the security officer or the IT administrator revokes a waiting-room screen", identity.ErrForbidden)
	}
	return c.h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE console_displays SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, c.now().UnixNano(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotFound
		}
		_, err = c.h.Audit.AppendTx(ctx, tx, staffEvent(who, "display.revoke", "", "Display/"+id, "waiting-room screen revoked"))
		return err
	})
}

// Displays lists the enrolled screens that are not revoked.
func (c *Console) Displays(ctx context.Context) ([]Display, error) {
	rows, err := c.h.DB.Query(ctx, `SELECT id, department, label, enrolled_by, created_at FROM console_displays WHERE revoked_at IS NULL ORDER BY department, created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Display
	for rows.Next() {
		var d Display
		var created int64
		if err := rows.Scan(&d.ID, &d.Department, &d.Label, &d.EnrolledBy, &created); err != nil {
			return nil, err
		}
		d.Created = time.Unix(0, created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// screenOf reports whether token is an enrolled, unrevoked screen of
// department.
func (c *Console) screenOf(ctx context.Context, token, department string) (bool, error) {
	if !strings.HasPrefix(token, displayTokenPrefix) || len(token) != len(displayTokenPrefix)+43 {
		return false, nil
	}
	var dept string
	err := c.h.DB.QueryRow(ctx, `SELECT department FROM console_displays WHERE token_hash = ? AND revoked_at IS NULL`, displayTokenHash(token)).Scan(&dept)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && dept == department, err
}

type displaysData struct {
	Displays    []Display
	Departments []string
	Names       map[string]string
	New         *DisplayEnrolment
	Address     string // the new screen's full address
}

func (c *Console) displaysPage(w http.ResponseWriter, r *http.Request, pg *page) {
	c.showDisplays(w, r, pg, displaysData{})
}

func (c *Console) showDisplays(w http.ResponseWriter, r *http.Request, pg *page, d displaysData) {
	var err error
	if d.Displays, err = c.Displays(r.Context()); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	d.Departments, d.Names = c.departments(r), c.usernames(r.Context())
	pg.Data = d
	c.render(w, r, http.StatusOK, "displays", pg)
}

// enrolDisplay enrols a screen and shows its address once.
func (c *Console) enrolDisplay(w http.ResponseWriter, r *http.Request, pg *page) {
	e, err := c.EnrolDisplay(r.Context(), principalOf(r.Context()), strings.TrimSpace(r.PostFormValue("department")), r.PostFormValue("label"))
	if err != nil {
		c.fail(w, r, pg, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	c.showDisplays(w, r, pg, displaysData{New: &e, Address: "https://" + r.Host + e.Path})
}

func (c *Console) revokeDisplay(w http.ResponseWriter, r *http.Request, pg *page) {
	if err := c.RevokeDisplay(r.Context(), principalOf(r.Context()), chi.URLParam(r, "id")); err != nil {
		c.fail(w, r, pg, err)
		return
	}
	redirectDone(w, r, "/console/displays", "revoked")
}
