package imaging

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/store"
)

// The first version of the intake sealed every quarantined file and
// record with one shared system secret, and kept each import's origin in
// plaintext. upgrade re-seals them once, each item under a key of its own
// and each origin under its import's key, so that deleting or erasing an
// item destroys it. The shared secret stays in the key table (old backups
// were sealed with it); nothing new is sealed with it.

// legacyKey names the retired shared secret.
const legacyKey = "quarantine"

// legacyRecord is the record as the first version sealed it.
type legacyRecord struct {
	Name     string          `json:"name"`
	Findings []guard.Finding `json:"findings"`
}

func (in *Intake) upgrade(ctx context.Context) error {
	var items, origins int
	err := in.cfg.DB.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM quarantine_items WHERE keyed = 0), (SELECT COUNT(*) FROM imaging_imports WHERE origin <> '')`).Scan(&items, &origins)
	if err != nil || items+origins == 0 {
		return err
	}
	if err := in.sealOrigins(ctx); err != nil {
		return err
	}
	if items == 0 {
		return nil
	}
	legacy, err := in.legacyAEAD(ctx)
	if err != nil {
		return err
	}
	ids, err := in.legacyItems(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := in.reseal(ctx, legacy, id); err != nil {
			return fmt.Errorf("re-seal quarantine %s: %w", id, err)
		}
	}
	return nil
}

// legacyAEAD is the shared secret as the first version used it; only this
// upgrade opens with it.
func (in *Intake) legacyAEAD(ctx context.Context) (cipher.AEAD, error) {
	key, err := in.cfg.Keys.SystemKey(ctx, legacyKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (in *Intake) legacyItems(ctx context.Context) ([]string, error) {
	rows, err := in.cfg.DB.Query(ctx, `SELECT id FROM quarantine_items WHERE keyed = 0 ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// reseal opens one item with the shared secret and seals it again under
// a key of its own, in one transaction; an item another server re-sealed
// meanwhile is left alone.
func (in *Intake) reseal(ctx context.Context, legacy cipher.AEAD, id string) error {
	err := in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var sealedRec, sealedContent []byte
		if err := tx.QueryRow(ctx, `SELECT record, content FROM quarantine_items WHERE id = ? AND keyed = 0`, id).Scan(&sealedRec, &sealedContent); err != nil {
			return err
		}
		rec, content, err := openLegacy(legacy, id, sealedRec, sealedContent)
		if err != nil {
			return err
		}
		plain, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		dk, err := in.cfg.Keys.CreateKey(ctx, tx, itemOwner(id), "quarantine")
		if err != nil {
			return err
		}
		var newContent []byte
		if content != nil {
			newContent = dk.Seal(contentField(id), content)
		}
		_, err = tx.Exec(ctx, `UPDATE quarantine_items SET record = ?, content = ?, keyed = 1, unmatched = ? WHERE id = ? AND keyed = 0`,
			dk.Seal(recordField(id), plain), newContent, boolInt(rec.MRN != ""), id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// openLegacy opens a first-version record and content (nil when none was
// kept); the MRN is read from the content for matching.
func openLegacy(legacy cipher.AEAD, id string, sealedRec, sealedContent []byte) (quarantineRecord, []byte, error) {
	plain, err := guard.AEADOpener(legacy)(sealedRec, []byte("medsec.quarantine.record.v1\x00"+id))
	if err != nil {
		return quarantineRecord{}, nil, fmt.Errorf("record: %w", guard.ErrTampered)
	}
	var old legacyRecord
	if err := json.Unmarshal(plain, &old); err != nil {
		return quarantineRecord{}, nil, fmt.Errorf("record: %w", guard.ErrTampered)
	}
	rec := quarantineRecord{Name: old.Name, Findings: old.Findings}
	if sealedContent == nil {
		return rec, nil, nil
	}
	var buf bytes.Buffer
	q, err := guard.OpenQuarantine(bytes.NewReader(sealedContent), &buf, guard.AEADOpener(legacy))
	if err != nil {
		return rec, nil, fmt.Errorf("content: %w", err)
	}
	if q.OriginalName != id {
		return rec, nil, fmt.Errorf("content belongs to %s: %w", q.OriginalName, guard.ErrTampered)
	}
	rec.MRN = mrnOf(buf.Bytes())
	return rec, buf.Bytes(), nil
}

// sealOrigins seals each plaintext origin under its import's key.
func (in *Intake) sealOrigins(ctx context.Context) error {
	rows, err := in.cfg.DB.Query(ctx, `SELECT id FROM imaging_imports WHERE origin <> '' ORDER BY id`)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := in.sealOrigin(ctx, id); err != nil {
			return fmt.Errorf("seal the origin of import %s: %w", id, err)
		}
	}
	return nil
}

func (in *Intake) sealOrigin(ctx context.Context, id string) error {
	err := in.cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var origin string
		if err := tx.QueryRow(ctx, `SELECT origin FROM imaging_imports WHERE id = ? AND origin <> ''`, id).Scan(&origin); err != nil {
			return err
		}
		dk, err := in.cfg.Keys.CreateKey(ctx, tx, importOwner(id), "imaging-import")
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE imaging_imports SET origin = '', origin_sealed = ?, media = 'unknown' WHERE id = ?`, dk.Seal(originField(id), []byte(origin)), id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}
