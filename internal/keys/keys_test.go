package keys

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsec/medsec/internal/store"
	"github.com/medsec/medsec/internal/store/storetest"
)

// testKDF keeps tests fast; the file records its own parameters.
var testKDF = KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

func newKeyring(t *testing.T, db *store.DB) (*Keyring, *LocalProvider, string) {
	t.Helper()
	if err := db.Migrate(context.Background(), Migrations); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kek.json")
	p, err := CreateKeyFile(path, []byte("correct horse battery"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	return NewKeyring(db, p), p, path
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	pass := []byte("correct horse battery")
	p, err := CreateKeyFile(path, pass, testKDF)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := CreateKeyFile(path, pass, testKDF); err == nil {
		t.Error("CreateKeyFile overwrote an existing file")
	}
	if _, err := CreateKeyFile(filepath.Join(t.TempDir(), "k"), []byte("short"), testKDF); err == nil {
		t.Error("a 5-character passphrase was accepted")
	}
	w, _ := p.Wrap(context.Background(), []byte("0123456789abcdef0123456789abcdef"), []byte("aad"))
	q, err := OpenKeyFile(path, pass)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	got, err := q.Unwrap(context.Background(), w, []byte("aad"))
	if err != nil || string(got) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("unwrap after reopen: %q, %v", got, err)
	}
	if _, err := OpenKeyFile(path, []byte("wrong passphrase!")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	if _, err := OpenKeyFile(filepath.Join(t.TempDir(), "none"), pass); !errors.Is(err, ErrKeyFile) {
		t.Errorf("missing file: got %v, want ErrKeyFile", err)
	}
	raw, _ := os.ReadFile(path)
	for name, bad := range map[string][]byte{
		"truncated": raw[:len(raw)/2],
		"bit flip":  []byte(strings.Replace(string(raw), `"time": 1`, `"time": 2`, 1)),
		"not json":  []byte("hello"),
	} {
		os.WriteFile(path, bad, 0o600)
		if _, err := OpenKeyFile(path, pass); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s key file: got %v, want ErrKeyFile", name, err)
		}
	}
}

func TestSealBindsIdentity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, _, _ := newKeyring(t, db)
		ctx := context.Background()
		var a, b *PatientKey
		err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			var err error
			if a, err = kr.CreatePatientKey(ctx, tx, "pa"); err != nil {
				return err
			}
			b, err = kr.CreatePatientKey(ctx, tx, "pb")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		f := Field{Table: "patients", Record: "pa", Name: "name"}
		ct := a.Seal(f, []byte("김민수"))
		if bytes.Contains(ct, []byte("김민수")) {
			t.Fatal("ciphertext holds the plaintext")
		}
		got, err := a.Open(f, ct)
		if err != nil || string(got) != "김민수" {
			t.Fatalf("open: %q, %v", got, err)
		}
		other := []struct {
			name string
			key  *PatientKey
			f    Field
		}{
			{"other field", a, Field{"patients", "pa", "phone"}},
			{"other row", a, Field{"patients", "px", "name"}},
			{"other table", a, Field{"records", "pa", "name"}},
			{"other patient", b, f},
		}
		for _, o := range other {
			if _, err := o.key.Open(o.f, ct); !errors.Is(err, ErrTampered) {
				t.Errorf("ciphertext moved to %s: got %v, want ErrTampered", o.name, err)
			}
		}
		ct[len(ct)-1] ^= 1
		if _, err := a.Open(f, ct); !errors.Is(err, ErrTampered) {
			t.Errorf("flipped bit: got %v, want ErrTampered", err)
		}
		if _, err := a.Open(f, ct[:5]); !errors.Is(err, ErrTampered) {
			t.Errorf("short ciphertext: got %v, want ErrTampered", err)
		}
	})
}

func TestCryptoShredding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, provider, _ := newKeyring(t, db)
		ctx := context.Background()
		f := Field{Table: "patients", Record: "p1", Name: "rrn"}
		var ct []byte
		db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			pk, err := kr.CreatePatientKey(ctx, tx, "p1")
			if err == nil {
				ct = pk.Seal(f, []byte("900101-1234568"))
			}
			return err
		})
		if _, err := kr.ForPatient(ctx, db, "p1"); err != nil {
			t.Fatal(err)
		}
		err := db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			return kr.DestroyPatientKey(ctx, tx, "p1", "officer-1", "REQUEST erasure-7")
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = kr.ForPatient(ctx, db, "p1")
		var de *DestroyedError
		if !errors.Is(err, ErrDestroyed) || !errors.As(err, &de) {
			t.Fatalf("read after destruction: got %v, want *DestroyedError", err)
		}
		if de.Basis != "REQUEST erasure-7" || de.Patient != "p1" || !strings.Contains(err.Error(), "destroyed on") {
			t.Errorf("got %q, want when/by/basis", err)
		}
		var wrapped []byte
		db.QueryRow(ctx, `SELECT wrapped FROM data_keys WHERE owner = 'patient:p1'`).Scan(&wrapped)
		if wrapped != nil {
			t.Error("the wrapped key is still stored after destruction")
		}
		// The sealed value holds no plaintext, and no keyring over this
		// database and key file (a fresh process, no cache) opens it.
		if bytes.Contains(ct, []byte("900101-1234568")) || len(ct) == 0 {
			t.Fatalf("sealed value %q", ct)
		}
		if pk, err := NewKeyring(db, provider).ForPatient(ctx, db, "p1"); !errors.Is(err, ErrDestroyed) {
			t.Errorf("a fresh keyring after destruction: key %v, %v; want ErrDestroyed", pk, err)
		}
		err = db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			return kr.DestroyPatientKey(ctx, tx, "p1", "officer-1", "again")
		})
		if !errors.Is(err, ErrDestroyed) {
			t.Errorf("second destruction: got %v, want ErrDestroyed", err)
		}
		if _, err := kr.ForPatient(ctx, db, "nobody"); !errors.Is(err, ErrNoKey) {
			t.Errorf("unknown patient: got %v, want ErrNoKey", err)
		}
	})
}

func TestRotate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		kr, p, path := newKeyring(t, db)
		ctx := context.Background()
		f := Field{Table: "records", Record: "r", Name: "payload"}
		sealed := map[string][]byte{}
		db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			for _, id := range []string{"a", "b", "c"} {
				pk, err := kr.CreatePatientKey(ctx, tx, id)
				if err != nil {
					return err
				}
				sealed[id] = pk.Seal(f, []byte("note of "+id))
			}
			return nil
		})
		sys, err := kr.SystemKey(ctx, "audit-mac")
		if err != nil {
			t.Fatal(err)
		}
		old := p.ActiveKeyID()
		rep, err := kr.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rewrapped != 4 || len(rep.Retired) != 1 || rep.Retired[0] != old {
			t.Errorf("got %+v, want 4 keys re-wrapped and %s retired", rep, old)
		}
		// A fresh process with the rotated file reads everything.
		q, err := OpenKeyFile(path, []byte("correct horse battery"))
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Versions(); len(got) != 1 || got[0] == old {
			t.Errorf("key file holds %v after rotation, want only the new key", got)
		}
		kr2 := NewKeyring(db, q)
		for id, ct := range sealed {
			pk, err := kr2.ForPatient(ctx, db, id)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := pk.Open(f, ct); err != nil || string(got) != "note of "+id {
				t.Errorf("patient %s after rotation: %q, %v", id, got, err)
			}
		}
		sys2, err := kr2.SystemKey(ctx, "audit-mac")
		if err != nil || !bytes.Equal(sys, sys2) {
			t.Errorf("system key changed across rotation: %v", err)
		}
	})
}
