package keys

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// createKey makes owner's key in its own transaction and seals plain.
func createKey(t *testing.T, kr *Keyring, db *store.DB, owner string, f Field, plain string) []byte {
	t.Helper()
	var sealed []byte
	err := db.ReadWriteTx(context.Background(), func(ctx context.Context, tx *store.Tx) error {
		dk, err := kr.CreateKey(ctx, tx, owner, "test")
		if err == nil {
			sealed = dk.Seal(f, []byte(plain))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestOwnerKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, _, path := newKeyring(t, db)
		ctx := context.Background()
		f := Field{Table: "quarantine_items", Record: "q_1", Name: "content"}
		a := createKey(t, kr, db, "quarantine:q_1", f, "DICM file of someone")
		b := createKey(t, kr, db, "quarantine:q_2", f, "another file")

		dk, err := kr.ForOwner(ctx, db, "quarantine:q_1")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := dk.Open(f, a); err != nil || string(got) != "DICM file of someone" {
			t.Errorf("open: %q, %v", got, err)
		}
		if _, err := dk.Open(f, b); !errors.Is(err, ErrTampered) {
			t.Errorf("another owner's ciphertext: got %v, want ErrTampered", err)
		}
		if _, err := dk.Open(Field{Table: f.Table, Record: "q_2", Name: f.Name}, a); !errors.Is(err, ErrTampered) {
			t.Errorf("ciphertext moved to another row: got %v, want ErrTampered", err)
		}
		// A fresh keyring (another process) unwraps the key from its row.
		p2, err := OpenKeyFile(path, []byte("correct horse battery"))
		if err != nil {
			t.Fatal(err)
		}
		if dk2, err := NewKeyring(db, p2).ForOwner(ctx, db, "quarantine:q_1"); err != nil {
			t.Fatal(err)
		} else if got, err := dk2.Open(f, a); err != nil || string(got) != "DICM file of someone" {
			t.Errorf("open in another process: %q, %v", got, err)
		}
		err = db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			_, err := kr.CreateKey(ctx, tx, "quarantine:q_1", "test")
			return err
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("second key for one owner: got %v, want ErrConflict", err)
		}
	})
}

func TestDestroyOwnerKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, _, _ := newKeyring(t, db)
		ctx := context.Background()
		f := Field{Table: "quarantine_items", Record: "q_1", Name: "record"}
		createKey(t, kr, db, "quarantine:q_1", f, "name on the media")
		if _, err := kr.ForOwner(ctx, db, "quarantine:q_1"); err != nil {
			t.Fatal(err) // cached now: destruction must still win
		}
		destroy := func(owner string) error {
			return db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
				return kr.DestroyKey(ctx, tx, owner, "st_officer", "deleted by the security officer")
			})
		}
		if err := destroy("quarantine:q_1"); err != nil {
			t.Fatal(err)
		}
		_, err := kr.ForOwner(ctx, db, "quarantine:q_1")
		var de *DestroyedError
		if !errors.As(err, &de) || de.Owner != "quarantine:q_1" || de.By != "st_officer" || !strings.HasPrefix(err.Error(), "quarantine:q_1: data destroyed on") {
			t.Fatalf("read after destruction: got %v, want *DestroyedError naming the owner", err)
		}
		var wrapped []byte
		if err := db.QueryRow(ctx, `SELECT wrapped FROM data_keys WHERE owner = 'quarantine:q_1'`).Scan(&wrapped); err != nil || wrapped != nil {
			t.Errorf("wrapped key after destruction: %x (%v), want NULL", wrapped, err)
		}
		if err := destroy("quarantine:q_1"); !errors.Is(err, ErrDestroyed) {
			t.Errorf("second destruction: got %v, want ErrDestroyed", err)
		}
		if err := destroy("quarantine:q_nosuch"); !errors.Is(err, ErrNoKey) {
			t.Errorf("destroying a missing key: got %v, want ErrNoKey", err)
		}
	})
}

// TestOwnerNames: the generic calls never reach a patient's key or a
// system secret, whatever the caller passes.
func TestOwnerNames(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, _, _ := newKeyring(t, db)
		ctx := context.Background()
		db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			_, err := kr.CreatePatientKey(ctx, tx, "p1")
			return err
		})
		if _, err := kr.SystemKey(ctx, "audit-mac"); err != nil {
			t.Fatal(err)
		}
		for _, owner := range []string{"patient:p1", "system:audit-mac", "q_1", ":q_1", "quarantine:", "quarantine:q 1", "quarantine:김", strings.Repeat("x:", 101)} {
			t.Run(owner, func(t *testing.T) {
				err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
					return kr.DestroyKey(ctx, tx, owner, "x", "y")
				})
				if !errors.Is(err, ErrOwner) {
					t.Errorf("destroy %q: got %v, want ErrOwner", owner, err)
				}
				if _, err := kr.ForOwner(ctx, db, owner); !errors.Is(err, ErrOwner) {
					t.Errorf("for owner %q: got %v, want ErrOwner", owner, err)
				}
			})
		}
		if _, err := kr.ForPatient(ctx, db, "p1"); err != nil {
			t.Errorf("the patient's key after refused calls: %v", err)
		}
	})
}
