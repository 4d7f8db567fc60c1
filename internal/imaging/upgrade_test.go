package imaging_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/imaging"
)

// legacyHold writes an item as the first version of the intake did:
// record and content sealed with the shared secret "quarantine", the
// import's origin in plaintext.
func legacyHold(t *testing.T, f *fixture, id, importID, origin string, content []byte) {
	t.Helper()
	ctx := context.Background()
	key, err := f.h.Keys.SystemKey(ctx, "quarantine")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	var sealed bytes.Buffer
	q := guard.Quarantine{OriginalName: id, SHA256: digest, Size: int64(len(content)), QuarantinedAt: time.Now()}
	if err := q.Seal(&sealed, bytes.NewReader(content), guard.AEADSealer(aead)); err != nil {
		t.Fatal(err)
	}
	findings := []guard.Finding{{Path: "DICOM/POLY/IM0001", Detector: guard.DetectDICOMPreamble, Severity: guard.Critical, Reason: "PE header in the preamble", SHA256: digest}}
	rec, _ := json.Marshal(map[string]any{"name": "DICOM/POLY/IM0001", "origin": origin, "import_id": importID, "findings": findings})
	sealedRec, err := guard.AEADSealer(aead)(rec, []byte("medsec.quarantine.record.v1\x00"+id))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	if _, err := f.h.DB.Exec(ctx, `INSERT INTO quarantine_items (id, import_id, sha256, size, severity, detectors, state, held_at, record, content) VALUES (?, ?, ?, ?, 'critical', 'dicom-preamble', 'held', ?, ?, ?)`,
		id, importID, digest, len(content), now, sealedRec, sealed.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.h.DB.Exec(ctx, `INSERT INTO imaging_imports (id, origin, operator, started_at, finished_at, files, bytes, stored, duplicates, quarantined, skipped, failed) VALUES (?, ?, 'cli:old', ?, ?, 1, 1, 0, 0, 1, 0, 0)`,
		importID, origin, now, now); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeReseals: what the first version sealed with one shared key is
// sealed again, each item under a key of its own and the origin under the
// import's, and works as any other item (matched, listed, released).
func TestUpgradeReseals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, guard.Config{})
	poly := study(t, 81, testMRN, 1, 1, peHeader())[0].Data
	legacyHold(t, f, "q_0123456789abcdef0123", "imp_0123456789abcdef0123", "CD from Busan clinic", poly)
	in, err := imaging.New(ctx, imaging.Config{DB: f.h.DB, Keys: f.h.Keys, Audit: f.h.Audit, Door: f.h.Door, Alerts: f.h.Alerts})
	if err != nil {
		t.Fatal(err)
	}
	var legacy, plainOrigins int
	f.h.DB.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM quarantine_items WHERE keyed = 0), (SELECT COUNT(*) FROM imaging_imports WHERE origin <> '')`).Scan(&legacy, &plainOrigins)
	if legacy != 0 || plainOrigins != 0 {
		t.Errorf("after the upgrade: %d items on the shared key, %d origins in plaintext; want none", legacy, plainOrigins)
	}
	items, err := in.Quarantined(ctx, f.officer, imaging.Filter{})
	if err != nil || len(items) != 1 {
		t.Fatalf("items %+v, %v", items, err)
	}
	it := items[0]
	if it.Name != "DICOM/POLY/IM0001" || it.Origin != "CD from Busan clinic" || it.Patient != f.patient.Pseudonym || !it.Kept {
		t.Errorf("upgraded item %+v: want its name, origin, content and patient", it)
	}
	rel, err := in.Release(ctx, imaging.Decision{Who: f.officer, Reason: "checked after the upgrade"}, it.ID)
	if err != nil || rel.Stored == nil {
		t.Fatalf("release after the upgrade: %+v, %v", rel, err)
	}
	if _, err := in.Delete(ctx, imaging.Decision{Who: f.officer, Reason: "done"}, it.ID); err != nil {
		t.Fatal(err)
	}
	checkShredded(t, f, it.ID)
}
