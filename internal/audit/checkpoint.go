package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/medsec/medsec/internal/store"
)

// Checkpoint is a signed statement of the tree's size and root hash, in the
// C2SP tlog-checkpoint text form signed as a note:
//
//	<origin>\n<size>\n<base64 root>\n
type Checkpoint struct {
	Chain string
	Size  uint64
	Root  []byte
	Note  string // the signed note, as stored
}

// Checkpoint signs the chain's current size and root, stores the note in
// the database and appends it to the checkpoint file. It does nothing when
// the newest checkpoint already covers the head.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	var cp Checkpoint
	err := l.db.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.LockChain(ctx, l.cfg.Chain); err != nil {
			return err
		}
		rng, err := l.head(ctx, tx)
		if err != nil {
			return err
		}
		var stored int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM audit_checkpoints WHERE chain = ? AND size = ?`, l.cfg.Chain, int64(rng.End())).Scan(&stored); err != nil {
			return err
		}
		if stored > 0 {
			cp.Size = rng.End()
			return nil
		}
		root, err := treeRoot(rng)
		if err != nil {
			return err
		}
		cp, err = l.sign(rng.End(), root)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_checkpoints (chain, size, note, created_at) VALUES (?, ?, ?, ?)`,
			l.cfg.Chain, int64(cp.Size), cp.Note, time.Now().UnixNano())
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	if cp.Note != "" {
		if err := appendCheckpointFile(l.cfg.CheckpointFile, cp); err != nil {
			return Checkpoint{}, err
		}
		l.kickIndexer()
	}
	l.cpSize = cp.Size
	return cp, nil
}

func (l *Log) checkpointSize() uint64 {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	return l.cpSize
}

func (l *Log) sign(size uint64, root []byte) (Checkpoint, error) {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.cfg.Signer.Name(), size, base64.StdEncoding.EncodeToString(root))
	msg, err := note.Sign(&note.Note{Text: text}, l.cfg.Signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return Checkpoint{Chain: l.cfg.Chain, Size: size, Root: root, Note: string(msg)}, nil
}

func (l *Log) latestStoredCheckpoint(ctx context.Context) (uint64, error) {
	var size int64
	err := l.db.QueryRow(ctx, `SELECT COALESCE(MAX(size), 0) FROM audit_checkpoints WHERE chain = ?`, l.cfg.Chain).Scan(&size)
	if err != nil {
		return 0, fmt.Errorf("read audit checkpoints: %w", err)
	}
	return uint64(size), nil
}

// fileLine is one line of the checkpoint file.
type fileLine struct {
	Chain string `json:"chain"`
	Size  uint64 `json:"size"`
	Note  string `json:"note"`
}

// appendCheckpointFile appends cp as one JSON line and syncs the file.
func appendCheckpointFile(path string, cp Checkpoint) error {
	line, _ := json.Marshal(fileLine{Chain: cp.Chain, Size: cp.Size, Note: cp.Note})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit checkpoint file: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("audit checkpoint file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit checkpoint file: %w", err)
	}
	return f.Close()
}

// readCheckpointFile returns the notes of chain in the file. A torn last
// line (a crash while appending) is ignored; any other bad line is an error.
func readCheckpointFile(path, chain string) ([]fileLine, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []fileLine
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		var fl fileLine
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			if lineNo == strings.Count(string(raw), "\n")+1 {
				break // torn final line without newline
			}
			return nil, fmt.Errorf("checkpoint file %s line %d is damaged", path, lineNo)
		}
		if fl.Chain == chain {
			out = append(out, fl)
		}
	}
	return out, sc.Err()
}

// OpenCheckpoint verifies a signed checkpoint note with the verifier key
// and parses it.
func OpenCheckpoint(msg string, verifier note.Verifier) (Checkpoint, error) {
	n, err := note.Open([]byte(msg), note.VerifierList(verifier))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 3 || lines[0] != verifier.Name() {
		return Checkpoint{}, errors.New("checkpoint text is not a medsec checkpoint of this log")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint size: %w", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Checkpoint{}, errors.New("checkpoint root hash is malformed")
	}
	return Checkpoint{Size: size, Root: root, Note: msg}, nil
}

// treeRoot is the RFC 6962 root of a range starting at 0; the empty tree's
// root is the hash of nothing.
func treeRoot(rng *compact.Range) ([]byte, error) {
	if rng.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return rng.GetRootHash(nil)
}

// Head is the number of events the chain holds, as its head row says.
func Head(ctx context.Context, db *store.DB, chain string) (uint64, error) {
	var size int64
	err := db.QueryRow(ctx, `SELECT size FROM audit_heads WHERE chain = ?`, chain).Scan(&size)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return uint64(size), err
}

// LatestCheckpoint returns the newest checkpoint stored in the database for
// the chain and when it was signed (its signature is not checked here; the
// Verifier does that).
func LatestCheckpoint(ctx context.Context, db *store.DB, chain string) (size uint64, signed time.Time, err error) {
	var s, at int64
	err = db.QueryRow(ctx, `SELECT size, created_at FROM audit_checkpoints WHERE chain = ? ORDER BY size DESC LIMIT 1`, chain).Scan(&s, &at)
	if err != nil {
		return 0, time.Time{}, err
	}
	return uint64(s), time.Unix(0, at), nil
}
