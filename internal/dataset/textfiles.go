package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/medsec/medsec/internal/deid/text"
)

// Redacting many notes (`medsec deid text FILE… --out DIR`) is a long job
// too: it keeps a journal in the output directory of the files done, with
// the hash of each input and output, so an interrupted run resumes with the
// files not yet done (or changed since), and the journal is removed when
// every file is done.

// TextJournalFile is the journal's name inside the output directory.
const TextJournalFile = ".medsec-deid-text.json"

// TextJob is a batch of files to redact into a directory.
type TextJob struct {
	Inputs []string
	OutDir string
	Red    *text.Redactor
	// Fingerprint names how Red redacts (mode, threshold, a digest of the
	// surrogate secret); a resumed job must redact the same way, or its
	// files would not agree.
	Fingerprint string
	Progress    Progress
}

// TextResult counts what a job did.
type TextResult struct {
	Files, Resumed int
	Bytes          int64
}

type textJournal struct {
	Format      string              `json:"format"`
	Fingerprint string              `json:"fingerprint"`
	Files       map[string]textDone `json:"files"` // by output name
}

type textDone struct {
	Input     string `json:"input"`
	InputSHA  string `json:"input_sha256"`
	OutputSHA string `json:"output_sha256"`
}

const textJournalFormat = "medsec-deid-text-job/1"

// RedactFiles redacts each input into OutDir under the input's base name.
// Two inputs with the same base name are refused before anything is
// written; each output appears whole (written to a temporary file, synced,
// renamed).
func RedactFiles(ctx context.Context, job TextJob) (TextResult, error) {
	if job.Progress == nil {
		job.Progress = NoProgress{}
	}
	total, err := checkInputs(job.Inputs)
	if err != nil {
		return TextResult{}, err
	}
	if err := os.MkdirAll(job.OutDir, 0o700); err != nil {
		return TextResult{}, fmt.Errorf("redact files: %w", err)
	}
	j, err := loadTextJournal(job)
	if err != nil {
		return TextResult{}, err
	}
	var res TextResult
	job.Progress.Start("bytes", total)
	defer job.Progress.Finish()
	for _, in := range job.Inputs {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("%w after %d of %d files: %w (run the same command again to resume)", ErrInterrupted, res.Files, len(job.Inputs), err)
		}
		n, resumed, err := redactFile(ctx, job, j, in)
		if err != nil {
			return res, err
		}
		res.Files++
		res.Bytes += n
		if resumed {
			res.Resumed++
		}
		job.Progress.Add(n)
	}
	return res, os.Remove(filepath.Join(job.OutDir, TextJournalFile))
}

// checkInputs refuses colliding output names and returns the total size.
func checkInputs(inputs []string) (int64, error) {
	seen := map[string]string{}
	var total int64
	for _, in := range inputs {
		base := filepath.Base(in)
		if prev, dup := seen[base]; dup {
			return 0, fmt.Errorf("redact files: %s and %s would both be written as %s; redact them into different directories", prev, in, base)
		}
		if base == TextJournalFile {
			return 0, fmt.Errorf("redact files: an input may not be named %s", TextJournalFile)
		}
		seen[base] = in
		st, err := os.Stat(in)
		if err != nil {
			return 0, fmt.Errorf("redact files: %w", err)
		}
		total += st.Size()
	}
	return total, nil
}

func loadTextJournal(job TextJob) (*textJournal, error) {
	path := filepath.Join(job.OutDir, TextJournalFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &textJournal{Format: textJournalFormat, Fingerprint: job.Fingerprint, Files: map[string]textDone{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redact files: read the job journal: %w", err)
	}
	j, err := parseTextJournal(raw)
	if err != nil {
		return nil, fmt.Errorf("redact files: %s: %w (remove it to start again)", path, err)
	}
	if j.Fingerprint != job.Fingerprint {
		return nil, fmt.Errorf("redact files: the interrupted job in %s redacted another way (mode, threshold or secret); run it with the same options, or remove %s to start again", job.OutDir, TextJournalFile)
	}
	return j, nil
}

func parseTextJournal(b []byte) (*textJournal, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j textJournal
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	if j.Format != textJournalFormat || j.Files == nil {
		return nil, fmt.Errorf("format %q, want %q", j.Format, textJournalFormat)
	}
	return &j, nil
}

// redactFile redacts one input unless the journal says it is done and both
// files still match their hashes.
func redactFile(ctx context.Context, job TextJob, j *textJournal, in string) (int64, bool, error) {
	name := filepath.Base(in)
	inSum, n, err := hashFile(os.DirFS(filepath.Dir(in)), name)
	if err != nil {
		return 0, false, fmt.Errorf("redact %s: %w", in, err)
	}
	out := filepath.Join(job.OutDir, name)
	if d, ok := j.Files[name]; ok && d.InputSHA == inSum {
		if outSum, _, err := hashFile(os.DirFS(job.OutDir), name); err == nil && outSum == d.OutputSHA {
			return n, true, nil
		}
	}
	outSum, err := redactTo(ctx, job.Red, in, out)
	if err != nil {
		return 0, false, err
	}
	j.Files[name] = textDone{Input: in, InputSHA: inSum, OutputSHA: outSum}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return 0, false, err
	}
	if err := writeFileAtomic(filepath.Join(job.OutDir, TextJournalFile), b); err != nil {
		return 0, false, fmt.Errorf("write the job journal: %w", err)
	}
	return n, false, nil
}

func redactTo(ctx context.Context, red *text.Redactor, in, out string) (string, error) {
	src, err := os.Open(in)
	if err != nil {
		return "", fmt.Errorf("redact %s: %w", in, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("redact %s: %w", in, err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if err := text.RedactReader(ctx, src, io.MultiWriter(tmp, h), red); err != nil {
		tmp.Close()
		return "", fmt.Errorf("redact %s: %w", in, err)
	}
	if err := closeSynced(tmp); err != nil {
		return "", fmt.Errorf("redact %s: %w", in, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("redact %s: %w", in, err)
	}
	return hexSum(h), nil
}

// TextFingerprint names a redaction for the job journal without revealing
// the secret: the mode, the threshold and a keyed digest.
func TextFingerprint(mode string, minConfidence float64, secret []byte) string {
	fp := fmt.Sprintf("%s/%g", mode, minConfidence)
	if len(secret) > 0 {
		fp += fmt.Sprintf("/%x", mac(secret, "medsec deid text fingerprint v1")[:8])
	}
	return fp
}
