package workstation

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/medsec/medsec/internal/alerts"
	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/guard/agent"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
	"github.com/medsec/medsec/internal/store"
)

// What a workstation reports may name a patient: the path of a changed
// file in a PACS export folder ("/export/KIM_MINSU_19800101/..."), an
// error message quoting it. The inbox and the audit log therefore get a
// description the server writes itself from the report's kind: the
// executable's base name for an allowlist violation, the protected root's
// label and a keyed hash for a file; never a path or the agent's own
// words. The full report is sealed in the alert for the security officer.

// pathSecret names the system secret that keys the path hashes.
const pathSecret = "workstation-paths"

// reportOwner owns the data key that seals workstations' full reports;
// they belong to no patient.
const reportOwner = "guard:workstation-reports"

// UnlistedRoot labels a changed file under no configured protected root.
const UnlistedRoot = "unlisted-root"

var (
	labelPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	kindPattern  = regexp.MustCompile(`^[a-z][a-z-]{0,40}$`)
	exePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	hexPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func checkRoots(roots []ProtectedRoot) error {
	for _, r := range roots {
		if !labelPattern.MatchString(r.Label) || strings.TrimSpace(r.Path) == "" {
			return fmt.Errorf("%w: protected root %q: a label of 1-32 lower-case letters, digits or '-' and a path", ErrInvalid, r.Label)
		}
	}
	return nil
}

// reportKey loads, or makes once, the key that seals full reports.
func reportKey(ctx context.Context, cfg Config) (*keys.DataKey, error) {
	dk, err := cfg.Keys.ForOwner(ctx, cfg.DB, reportOwner)
	if !errors.Is(err, keys.ErrNoKey) {
		return dk, err
	}
	err = cfg.DB.ReadWriteTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := cfg.Keys.CreateKey(ctx, tx, reportOwner, "guard-reports")
		return err
	})
	if err != nil && !errors.Is(err, store.ErrConflict) { // another server made it first
		return nil, err
	}
	return cfg.Keys.ForOwner(ctx, cfg.DB, reportOwner)
}

// PathRef is the keyed hash that stands for a workstation path in alerts
// and the audit log. The officer who has a path in hand (from the
// workstation, or an opened report) can check which alerts name it.
func (r *Registry) PathRef(path string) string {
	m := hmac.New(sha256.New, r.pathKey)
	m.Write([]byte(slashes(path)))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

func slashes(p string) string { return strings.ReplaceAll(p, `\`, "/") }

// rootLabel is the label of the longest configured root holding path.
func (r *Registry) rootLabel(path string) string {
	p, label, best := slashes(path), UnlistedRoot, -1
	for _, root := range r.cfg.Protected {
		dir := strings.TrimRight(slashes(root.Path), "/")
		if (p == dir || strings.HasPrefix(p, dir+"/")) && len(dir) > best {
			label, best = root.Label, len(dir)
		}
	}
	return label
}

// kindLabel is the report's kind when it reads as one.
func kindLabel(k agent.Kind) string {
	if kindPattern.MatchString(string(k)) {
		return string(k)
	}
	return "unknown-kind"
}

// describe says what a report is about, in the server's words.
func (r *Registry) describe(rep agent.Report) string {
	switch rep.Kind {
	case agent.ProcessNotAllowed:
		return fmt.Sprintf("executable %s%s is not on the allowlist", exeName(rep.Exe), digest(rep.SHA256))
	case agent.ProcessStopped:
		return fmt.Sprintf("executable %s%s is not on the allowlist; it was stopped", exeName(rep.Exe), digest(rep.SHA256))
	case agent.ProcessStopFailed:
		return fmt.Sprintf("executable %s%s is not on the allowlist; stopping it failed", exeName(rep.Exe), digest(rep.SHA256))
	case agent.ProcessUnverified:
		return "a running executable could not be read to check it"
	case agent.IntegrityError:
		return "the file-integrity check failed on the workstation"
	}
	if what, ok := fileChanges[rep.Kind]; ok {
		return fmt.Sprintf("%s: file %s/%s%s", what, r.rootLabel(rep.Path), r.PathRef(rep.Path), digest(rep.SHA256))
	}
	return "a report of a kind this server does not know"
}

var fileChanges = map[agent.Kind]string{
	agent.FileModified:     "content changed",
	agent.FileAdded:        "new file",
	agent.FileRemoved:      "file removed",
	agent.FileOwnerChanged: "owner changed",
	agent.FileModeChanged:  "permissions changed",
}

// exeName is an executable's base name when it reads as a program's name
// (ASCII, no run of five digits that may be a patient number).
func exeName(exe string) string {
	base := exe[strings.LastIndexAny(exe, `/\`)+1:]
	if !exePattern.MatchString(base) || digitRun(base) >= 5 {
		return "(name withheld)"
	}
	return base
}

func digitRun(s string) int {
	longest, run := 0, 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

func digest(sum string) string {
	if !hexPattern.MatchString(sum) {
		return ""
	}
	return " (sha256 " + sum[:12] + "…)"
}

// The sealed report in an alert's detail follows a line for the officer:
// "... sealed-report:v1:NAME:ID:DATA".
const (
	sealedNote   = "The full report (paths may name patients) is sealed; a security officer opens it (workstation.Registry.OpenReport, audited): "
	sealedPrefix = "sealed-report:v1:"
)

func reportField(name, id string) keys.Field {
	return keys.Field{Table: "alerts", Record: "guard:" + name + ":" + id, Name: "detail"}
}

// sealReport seals the full report for the alert's detail.
func (r *Registry) sealReport(name string, rep agent.Report) (string, error) {
	plain, err := json.Marshal(rep)
	if err != nil {
		return "", err
	}
	sealed := r.reports.Seal(reportField(name, rep.ID), plain)
	return sealedNote + sealedPrefix + name + ":" + rep.ID + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

func parseSealed(detail string) (name, id string, sealed []byte, err error) {
	_, rest, found := strings.Cut(detail, sealedPrefix)
	parts := strings.SplitN(rest, ":", 3)
	if !found || len(parts) != 3 {
		return "", "", nil, fmt.Errorf("%w: the alert holds no sealed workstation report", ErrInvalid)
	}
	sealed, err = base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil {
		return "", "", nil, fmt.Errorf("%w: the alert's sealed report is damaged", ErrInvalid)
	}
	return parts[0], parts[1], sealed, nil
}

// OpenReport unseals the full report of a workstation alert, paths and
// the agent's own words included, for a security officer signed in with
// a second factor. The read is audited before the report is opened; a
// refusal is audited too.
func (r *Registry) OpenReport(ctx context.Context, who identity.Principal, a alerts.Alert) (agent.Report, error) {
	name, id, sealed, perr := parseSealed(a.Detail)
	ev := audit.Event{Time: r.cfg.Now(), Actor: who.ID, Role: who.Role, Action: "guard.report.read", Purpose: "HOPERAT",
		Resource: "Workstation/" + name, Outcome: audit.Success, Source: who.Source, Reason: "opened the sealed report of alert " + a.ID}
	switch {
	case !who.Verified() || who.Role != identity.RoleSecurityOfficer || !who.MFA:
		if ev.Actor == "" {
			ev.Actor = "anonymous"
		}
		ev.Outcome, ev.Reason = audit.Denied, ErrNotOfficer.Error()
		if _, err := r.cfg.Audit.Append(ctx, ev); err != nil {
			return agent.Report{}, errors.Join(ErrNotOfficer, err)
		}
		return agent.Report{}, ErrNotOfficer
	case perr != nil:
		return agent.Report{}, perr
	}
	if _, err := r.cfg.Audit.Append(ctx, ev); err != nil {
		return agent.Report{}, fmt.Errorf("audit before data: %w", err)
	}
	plain, err := r.reports.Open(reportField(name, id), sealed)
	if err != nil {
		return agent.Report{}, fmt.Errorf("open the report of alert %s: %w", a.ID, err)
	}
	var rep agent.Report
	if err := json.Unmarshal(plain, &rep); err != nil {
		return agent.Report{}, fmt.Errorf("open the report of alert %s: %w", a.ID, keys.ErrTampered)
	}
	return rep, nil
}
