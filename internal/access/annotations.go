package access

import (
	"regexp"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
)

// Annotations medsec reads on a policy:
//
//	@id("nurse-ward")          required, unique: names the policy in decisions
//	@reason("...")             required: why it permits, forbids or flags
//	@flag("break-glass, ...")  makes the policy a flag policy (never decides)
//	@on("allow"|"deny"|"always") which decisions a flag policy marks; default allow
//
// Any other annotation is refused, so a misspelt @flags cannot turn a flag
// policy into a permit.
const (
	annID     = "id"
	annReason = "reason"
	annFlag   = "flag"
	annOn     = "on"
)

const (
	onAllow  = "allow"
	onDeny   = "deny"
	onAlways = "always"
)

var policyName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// policyMeta is what medsec knows about a policy besides its Cedar text.
type policyMeta struct {
	id, reason string
	flags      []string
	flagReason string // "flagged vip: the patient is labelled VIP"
	on         string
	permit     bool
	file       string
	line       int
}

// policyMetaOf reads the annotations of p and returns what is wrong with
// them, if anything.
func policyMetaOf(p *cedar.Policy) (policyMeta, []string) {
	m := policyMeta{permit: p.Effect() == cedar.Permit, on: onAllow}
	var problems []string
	ann := p.Annotations()
	for k := range ann {
		if !slices.Contains([]string{annID, annReason, annFlag, annOn}, string(k)) {
			problems = append(problems, "unknown annotation @"+string(k)+" (known: @id, @reason, @flag, @on)")
		}
	}
	m.id = string(ann[annID])
	switch {
	case m.id == "":
		problems = append(problems, `missing @id("...")`)
	case !policyName.MatchString(m.id):
		problems = append(problems, "@id "+m.id+" must be lower-case letters, digits and hyphens")
	}
	m.reason = strings.TrimSpace(string(ann[annReason]))
	if m.reason == "" {
		problems = append(problems, `missing @reason("...")`)
	}
	problems = append(problems, m.readFlags(ann)...)
	return m, problems
}

func (m *policyMeta) readFlags(ann cedar.Annotations) []string {
	flagText, hasFlag := ann[annFlag]
	onText, hasOn := ann[annOn]
	if !hasFlag {
		if hasOn {
			return []string{"@on is only for flag policies (with @flag)"}
		}
		return nil
	}
	var problems []string
	if !m.permit {
		problems = append(problems, "a flag policy must be a permit")
	}
	for f := range strings.SplitSeq(string(flagText), ",") {
		f = strings.TrimSpace(f)
		if !policyName.MatchString(f) {
			problems = append(problems, "@flag "+strings.TrimSpace(string(flagText))+": flag names are lower-case letters, digits and hyphens, separated by commas")
			break
		}
		m.flags = append(m.flags, f)
	}
	m.flagReason = "flagged " + strings.Join(m.flags, ", ") + ": " + m.reason
	if hasOn {
		m.on = string(onText)
		if !slices.Contains([]string{onAllow, onDeny, onAlways}, m.on) {
			problems = append(problems, `@on must be "allow", "deny" or "always"`)
		}
	}
	return problems
}
