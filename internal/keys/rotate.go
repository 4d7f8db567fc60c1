package keys

import (
	"context"
	"fmt"

	"github.com/medsec/medsec/internal/store"
)

// RotationReport says what a rotation did.
type RotationReport struct {
	NewKeyID  string
	Rewrapped int
	Retired   []string
}

// Rotate makes a new KEK active, re-wraps every data key under it (the
// sealed data is untouched) and retires the old KEK versions. It is safe to
// run again after a crash: keys still wrapped by an old version are found
// and re-wrapped, and a version is retired only when nothing uses it.
func (k *Keyring) Rotate(ctx context.Context) (RotationReport, error) {
	r, ok := k.provider.(Rotator)
	if !ok {
		return RotationReport{}, fmt.Errorf("rotate: the key provider %T rotates its own keys", k.provider)
	}
	newID, err := r.AddVersion(ctx)
	if err != nil {
		return RotationReport{}, fmt.Errorf("rotate: add key-encryption key: %w", err)
	}
	rep := RotationReport{NewKeyID: newID}
	for {
		n, err := k.rewrapBatch(ctx, newID, 500)
		if err != nil {
			return rep, fmt.Errorf("rotate: re-wrap data keys: %w", err)
		}
		rep.Rewrapped += n
		if n == 0 {
			break
		}
	}
	for _, id := range r.Versions() {
		if id == newID {
			continue
		}
		if err := r.Retire(ctx, id); err != nil {
			return rep, fmt.Errorf("rotate: retire %s: %w", id, err)
		}
		rep.Retired = append(rep.Retired, id)
	}
	return rep, nil
}

func (k *Keyring) rewrapBatch(ctx context.Context, newID string, limit int) (int, error) {
	n := 0
	err := k.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, `SELECT owner, kek_id, wrapped FROM data_keys WHERE kek_id <> ? AND wrapped IS NOT NULL LIMIT ?`, newID, limit)
		if err != nil {
			return err
		}
		type item struct {
			owner string
			w     Wrapped
		}
		var items []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.owner, &it.w.KeyID, &it.w.Ciphertext); err != nil {
				rows.Close()
				return err
			}
			items = append(items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range items {
			if err := k.rewrapOne(ctx, tx, it.owner, it.w); err != nil {
				return err
			}
		}
		n = len(items)
		return nil
	})
	return n, err
}

func (k *Keyring) rewrapOne(ctx context.Context, tx *store.Tx, owner string, old Wrapped) error {
	raw, err := k.provider.Unwrap(ctx, old, wrapAAD(owner))
	if err != nil {
		return fmt.Errorf("%s: %w", owner, err)
	}
	w, err := k.provider.Wrap(ctx, raw, wrapAAD(owner))
	if err != nil {
		return fmt.Errorf("%s: %w", owner, err)
	}
	_, err = tx.Exec(ctx, `UPDATE data_keys SET kek_id = ?, wrapped = ? WHERE owner = ?`, w.KeyID, w.Ciphertext, owner)
	return err
}
