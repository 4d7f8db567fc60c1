package access

import (
	"fmt"
	"iter"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// Engine holds the validated policies. It is immutable after Load, so one
// Engine serves every goroutine; Decide does no I/O.
type Engine struct {
	decisive     *policyList // permits and forbids that decide
	flagsOnAllow *policyList // flag policies for allowed requests
	flagsOnDeny  *policyList // flag policies for denied requests
	meta         map[types.PolicyID]policyMeta
}

type namedPolicy struct {
	id     types.PolicyID
	policy *cedar.Policy
}

// policyList keeps policies in file order, so that a decision lists its
// policies in the same order every time (a map would not). Its iterator is
// built once: cedar.Authorize takes an interface, and a slice or a fresh
// closure handed to it costs an allocation on every decision.
type policyList struct {
	policies []namedPolicy
	all      iter.Seq2[cedar.PolicyID, *cedar.Policy]
}

func newPolicyList(ps []namedPolicy) *policyList {
	l := &policyList{policies: ps}
	l.all = func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, np := range l.policies {
			if !yield(np.id, np.policy) {
				return
			}
		}
	}
	return l
}

// All implements cedar.PolicyIterator.
func (l *policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return l.all }

// Decision is the answer to a Request, as it goes into the audit log.
type Decision struct {
	Allow bool `json:"allow"`
	// Flags mark the access for whoever reads the log: "break-glass",
	// "review", "vip", "deidentified-only", "grant", "legal-basis",
	// "sensitive", "co-worker", "same-surname". Sorted.
	Flags []string `json:"flags,omitempty"`
	// Policies are the @id of the policies that decided: the permits that
	// allowed, or the forbids that denied. Empty for a deny by default.
	Policies []string `json:"policies,omitempty"`
	// Reasons say in words why, one per deciding policy, then one per flag
	// policy that marked the decision.
	Reasons []string `json:"reasons,omitempty"`
	// Errors are problems with the request or in evaluating a policy; any
	// error makes the decision a deny.
	Errors []string `json:"errors,omitempty"`
}

// Err returns nil for an allowed request and an error wrapping ErrDenied,
// with the first reason, for a denied one.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	if len(d.Reasons) == 0 {
		return ErrDenied
	}
	return fmt.Errorf("%w: %s", ErrDenied, d.Reasons[0])
}

// HasFlag reports whether the decision carries flag f.
func (d Decision) HasFlag(f string) bool {
	return slices.Contains(d.Flags, f)
}

const (
	defaultDenyReason = "no policy permits this request; medsec denies by default"
	failClosedReason  = "a policy could not be evaluated; medsec denies when in doubt"
)

// Decide answers one request. It never fails: a malformed request or a
// policy that cannot be evaluated gives a deny with Errors set.
func (e *Engine) Decide(r Request) Decision {
	if problems := checkRequest(&r); len(problems) > 0 {
		return Decision{Reasons: []string{"the request is incomplete or names unknown values"}, Errors: problems}
	}
	c := toCedar(&r)
	ok, diag := cedar.Authorize(e.decisive, c, c.req)
	d := Decision{Allow: bool(ok)}
	for _, reason := range diag.Reasons {
		d.Policies = append(d.Policies, string(reason.PolicyID))
		d.Reasons = append(d.Reasons, e.meta[reason.PolicyID].reason)
	}
	if !d.Allow && len(d.Policies) == 0 && len(diag.Errors) == 0 {
		d.Reasons = append(d.Reasons, defaultDenyReason)
	}
	d.addErrors(diag.Errors)
	e.addFlags(&d, c)
	return d
}

// addErrors records evaluation errors and fails closed: a forbid that could
// not be evaluated must not let a permit through.
func (d *Decision) addErrors(errs []types.DiagnosticError) {
	if len(errs) == 0 {
		return
	}
	for _, err := range errs {
		d.Errors = append(d.Errors, fmt.Sprintf("policy %s: %s", err.PolicyID, err.Message))
	}
	if d.Allow || len(d.Policies) == 0 {
		d.Allow = false
		d.Policies, d.Reasons = nil, []string{failClosedReason}
	}
}

func (e *Engine) addFlags(d *Decision, c *cedarRequest) {
	list := e.flagsOnDeny
	if d.Allow {
		list = e.flagsOnAllow
	}
	if len(list.policies) == 0 {
		return
	}
	_, diag := cedar.Authorize(list, c, c.req)
	for _, reason := range diag.Reasons {
		m := e.meta[reason.PolicyID]
		for _, f := range m.flags {
			if !slices.Contains(d.Flags, f) {
				d.Flags = append(d.Flags, f)
			}
		}
		d.Reasons = append(d.Reasons, m.flagReason)
	}
	slices.Sort(d.Flags)
	d.addErrors(diag.Errors)
}

// checkRequest reports what makes a request impossible to judge. The
// messages name fields and vocabulary, never patient data. It formats only
// on failure: it runs on every request.
func checkRequest(r *Request) []string {
	var problems []string
	if r.Staff.ID == "" {
		problems = append(problems, "staff ID is empty")
	}
	if r.Patient.ID == "" {
		problems = append(problems, "patient ID is empty")
	}
	if r.Now.IsZero() {
		problems = append(problems, "request time is not set")
	}
	if !knownRole(r.Staff.Role) {
		problems = append(problems, fmt.Sprintf("unknown role %q", r.Staff.Role))
	}
	if !knownAction(r.Action) {
		problems = append(problems, fmt.Sprintf("unknown action %q", r.Action))
	}
	if !knownDataClass(r.DataClass) {
		problems = append(problems, fmt.Sprintf("unknown data class %q", r.DataClass))
	}
	return append(problems, checkVocabulary(r)...)
}

func checkVocabulary(r *Request) []string {
	var problems []string
	if !knownPurpose(r.Purpose) {
		problems = append(problems, fmt.Sprintf("unknown purpose of use %q", r.Purpose))
	}
	for _, l := range r.Patient.Labels {
		if !knownLabel(l) {
			problems = append(problems, fmt.Sprintf("unknown sensitivity label %q", l))
		}
	}
	for _, c := range r.Patient.Consents {
		if !knownPurpose(c.Purpose) {
			problems = append(problems, fmt.Sprintf("consent names unknown purpose of use %q", c.Purpose))
		}
	}
	return problems
}

// Explain renders the decision for a person (medsec policy explain).
func (d Decision) Explain() string {
	var b strings.Builder
	verdict := "DENY"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(&b, "decision: %s\n", verdict)
	if len(d.Flags) > 0 {
		fmt.Fprintf(&b, "flags: %s\n", strings.Join(d.Flags, ", "))
	}
	if len(d.Policies) > 0 {
		b.WriteString("decided by:\n")
		for i, id := range d.Policies {
			fmt.Fprintf(&b, "  %s: %s\n", id, reasonAt(d.Reasons, i))
		}
	}
	if rest := d.otherReasons(); len(rest) > 0 {
		b.WriteString("because:\n")
		for _, r := range rest {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	for _, e := range d.Errors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	return b.String()
}

func reasonAt(reasons []string, i int) string {
	if i < len(reasons) {
		return reasons[i]
	}
	return ""
}

// otherReasons are the reasons not paired with a deciding policy: the
// default deny, request problems and flags.
func (d Decision) otherReasons() []string {
	if len(d.Policies) >= len(d.Reasons) {
		return nil
	}
	return d.Reasons[len(d.Policies):]
}

// PolicyInfo describes one loaded policy (medsec policy list).
type PolicyInfo struct {
	ID     string   `json:"id"`
	Effect string   `json:"effect"` // "permit", "forbid" or "flag"
	Flags  []string `json:"flags,omitempty"`
	Reason string   `json:"reason"`
	File   string   `json:"file"`
	Line   int      `json:"line"`
}

// Policies lists the loaded policies in file order.
func (e *Engine) Policies() []PolicyInfo {
	var out []PolicyInfo
	seen := map[types.PolicyID]bool{}
	for _, list := range []*policyList{e.decisive, e.flagsOnAllow, e.flagsOnDeny} {
		for _, np := range list.policies {
			if seen[np.id] {
				continue
			}
			seen[np.id] = true
			out = append(out, e.meta[np.id].info())
		}
	}
	slices.SortStableFunc(out, func(a, b PolicyInfo) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return out
}

func (m policyMeta) info() PolicyInfo {
	effect := "forbid"
	switch {
	case len(m.flags) > 0:
		effect = "flag"
	case m.permit:
		effect = "permit"
	}
	return PolicyInfo{ID: m.id, Effect: effect, Flags: slices.Clone(m.flags), Reason: m.reason, File: m.file, Line: m.line}
}
