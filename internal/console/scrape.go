package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/hospital"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/store"
)

// A scrape token lets a Prometheus scraper read /metrics and nothing else,
// without a staff session that would time out. It reads
// "msmetrics_<id>_<secret>"; the database keeps only the SHA-256 of the
// secret, so a copy of the database cannot be used to scrape.

// scrapeMigrations create the table of scrape tokens.
var scrapeMigrations = []store.Migration{
	{Component: "console_scrape", Version: 1, Name: "metrics scrape tokens", SQL: `CREATE TABLE console_scrape_tokens (
		id TEXT PRIMARY KEY,
		digest BLOB NOT NULL,
		label TEXT NOT NULL,
		created_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		revoked_at BIGINT)`},
}

const scrapePrefix = "msmetrics_"

// ErrScrapeToken is returned for a scrape token that is unknown, revoked
// or malformed; the scraper needs a new one (medsec metrics token create).
var ErrScrapeToken = errors.New("not a valid metrics scrape token")

// ScrapeToken describes a scrape token; the token itself is shown once.
type ScrapeToken struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// PrepareScrapeTokens creates the scrape token table when it is missing.
func PrepareScrapeTokens(ctx context.Context, db *store.DB) error {
	if err := db.Migrate(ctx, scrapeMigrations); err != nil {
		return fmt.Errorf("prepare metrics scrape tokens: %w", err)
	}
	return nil
}

// CreateScrapeToken makes a scrape token for by, who must be the security
// officer or the IT administrator, and returns it: it is not stored and
// cannot be shown again.
func CreateScrapeToken(ctx context.Context, h *hospital.Hospital, by identity.Principal, label string) (ScrapeToken, string, error) {
	if err := mayManageScrape(by); err != nil {
		return ScrapeToken{}, "", err
	}
	if strings.TrimSpace(label) == "" {
		return ScrapeToken{}, "", errors.New("name the scraper the token is for with --label (e.g. prometheus-01)")
	}
	t := ScrapeToken{ID: strings.ToLower(rand.Text()[:12]), Label: label, CreatedBy: by.ID, CreatedAt: time.Now()}
	secret := rand.Text()
	digest := sha256.Sum256([]byte(secret))
	err := h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := h.Audit.AppendTx(ctx, tx, scrapeEvent(by, "metrics.token.create", t.ID, label)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO console_scrape_tokens (id, digest, label, created_by, created_at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, digest[:], label, by.ID, t.CreatedAt.UnixNano())
		return err
	})
	if err != nil {
		return ScrapeToken{}, "", fmt.Errorf("create scrape token: %w", err)
	}
	return t, scrapePrefix + t.ID + "_" + secret, nil
}

// RevokeScrapeToken stops a scrape token at once.
func RevokeScrapeToken(ctx context.Context, h *hospital.Hospital, by identity.Principal, id string) error {
	if err := mayManageScrape(by); err != nil {
		return err
	}
	return h.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE console_scrape_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, time.Now().UnixNano(), id)
		if err != nil {
			return fmt.Errorf("revoke scrape token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("revoke scrape token %q: no such active token (medsec metrics token list shows them)", id)
		}
		_, err = h.Audit.AppendTx(ctx, tx, scrapeEvent(by, "metrics.token.revoke", id, ""))
		return err
	})
}

// ListScrapeTokens lists every scrape token, newest first.
func ListScrapeTokens(ctx context.Context, db *store.DB) ([]ScrapeToken, error) {
	rows, err := db.Query(ctx, `SELECT id, label, created_by, created_at, revoked_at FROM console_scrape_tokens ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list scrape tokens: %w", err)
	}
	defer rows.Close()
	var out []ScrapeToken
	for rows.Next() {
		var t ScrapeToken
		var at int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Label, &t.CreatedBy, &at, &revoked); err != nil {
			return nil, err
		}
		t.CreatedAt = time.Unix(0, at)
		if revoked.Valid {
			r := time.Unix(0, revoked.Int64)
			t.RevokedAt = &r
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// checkScrapeToken says whether token is an active scrape token, comparing
// the secret's digest in constant time.
func checkScrapeToken(ctx context.Context, db *store.DB, token string) error {
	rest, ok := strings.CutPrefix(token, scrapePrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" || secret == "" {
		return ErrScrapeToken
	}
	var digest []byte
	var revoked sql.NullInt64
	err := db.QueryRow(ctx, `SELECT digest, revoked_at FROM console_scrape_tokens WHERE id = ?`, id).Scan(&digest, &revoked)
	if errors.Is(err, store.ErrNotFound) {
		return ErrScrapeToken
	}
	if err != nil {
		return fmt.Errorf("check scrape token: %w", err)
	}
	want := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(digest, want[:]) != 1 || revoked.Valid {
		return ErrScrapeToken
	}
	return nil
}

func mayManageScrape(by identity.Principal) error {
	if !slices.Contains(metricsRoles, by.Role) {
		return fmt.Errorf("%s (%s) may not manage metrics scrape tokens: the security officer or the IT administrator does", by.Username, by.Role)
	}
	return nil
}

func scrapeEvent(by identity.Principal, action, id, label string) audit.Event {
	return audit.Event{Actor: by.ID, Role: by.Role, Action: action, Purpose: "HOPERAT",
		Resource: "ScrapeToken/" + id, Outcome: audit.Success, Reason: label}
}
