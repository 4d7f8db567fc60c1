package keys

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// forge rewrites a key file's KDF parameters and recomputes its checksum,
// as someone with write access to the file could.
func forge(t testing.TB, path string, kdf KDFParams) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f keyFileJSON
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	f.KDF = kdf
	f.Summary = f.summary()
	b, _ := json.Marshal(f)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKeyFileForgedKDF: a key file whose checksum is right but whose
// argon2id parameters are unusable is refused with ErrKeyFile, never a
// panic or an allocation of all the machine's memory.
func TestKeyFileForgedKDF(t *testing.T) {
	for name, kdf := range map[string]KDFParams{
		"zero time":      {Time: 0, MemoryKiB: 1024, Threads: 1},
		"zero threads":   {Time: 1, MemoryKiB: 1024, Threads: 0},
		"huge memory":    {Time: 1, MemoryKiB: 1 << 31, Threads: 1},
		"too little mem": {Time: 1, MemoryKiB: 7, Threads: 1},
		"huge time":      {Time: 1 << 30, MemoryKiB: 1024, Threads: 1},
	} {
		path := filepath.Join(t.TempDir(), "kek.json")
		if _, err := CreateKeyFile(path, []byte("correct horse battery"), testKDF); err != nil {
			t.Fatal(err)
		}
		forge(t, path, kdf)
		if _, err := OpenKeyFile(path, []byte("correct horse battery")); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: got %v, want ErrKeyFile", name, err)
		}
		if _, err := CreateKeyFile(filepath.Join(t.TempDir(), "k"), []byte("correct horse battery"), kdf); err == nil {
			t.Errorf("%s: CreateKeyFile accepted the parameters", name)
		}
	}
}

// FuzzOpenKeyFile: any bytes in the key file's place give an error or a
// provider, never a panic.
func FuzzOpenKeyFile(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.json")
	if _, err := CreateKeyFile(good, []byte("correct horse battery"), testKDF); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	f.Add(raw)
	f.Add([]byte(`{"format":"medsec-kek-v1"}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "kek.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// a valid checksum over fuzzed parameters reaches the KDF check
		var kf keyFileJSON
		if json.Unmarshal(data, &kf) == nil && kf.KDF.check() == nil && kf.KDF.MemoryKiB > 64*1024 {
			return // valid but slow parameters: not what this fuzz target is for
		}
		OpenKeyFile(path, []byte("correct horse battery"))
	})
}

// FuzzKeyFileKDF: a key file with a right checksum and any argon2id
// parameters opens or gives ErrKeyFile, never a panic.
func FuzzKeyFileKDF(f *testing.F) {
	f.Add(uint32(1), uint32(1024), uint8(1))
	f.Add(uint32(0), uint32(0), uint8(0))
	f.Add(uint32(1), uint32(7), uint8(1))
	dir := f.TempDir()
	good := filepath.Join(dir, "good.json")
	if _, err := CreateKeyFile(good, []byte("correct horse battery"), testKDF); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	f.Fuzz(func(t *testing.T, time, mem uint32, threads uint8) {
		kdf := KDFParams{Time: time, MemoryKiB: mem, Threads: threads}
		if kdf.check() == nil && (time > 2 || mem > 16*1024) {
			return // valid but slow: argon2 would only take its time
		}
		path := filepath.Join(t.TempDir(), "kek.json")
		os.WriteFile(path, raw, 0o600)
		forge(t, path, kdf)
		if _, err := OpenKeyFile(path, []byte("correct horse battery")); err != nil && !errors.Is(err, ErrKeyFile) && !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%+v: %v, want ErrKeyFile or ErrWrongPassphrase", kdf, err)
		}
	})
}
