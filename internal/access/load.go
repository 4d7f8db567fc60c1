package access

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/medsec/medsec/policies"
)

// LoadShipped loads the policies carried in the binary (policies.FS).
func LoadShipped() (*Engine, error) {
	return Load(policies.FS)
}

// Load reads the schema (exactly one *.cedarschema file) and the policy files
// (*.cedar) at the root of fsys, validates every policy against the schema,
// and returns an Engine. Pass policies.FS for the shipped policies or
// os.DirFS(dir) for a hospital's own directory.
//
// Any problem stops the load: the error joins one *PolicyError per problem,
// each naming file, line and reason. Besides Cedar's validation (entity
// types, attributes and their types, actions, context keys), Load checks that
// enum literals (Role::"nurse") exist, that every policy has a unique @id and
// a @reason, and that the schema describes the requests medsec builds.
func Load(fsys fs.FS) (*Engine, error) {
	schemaFile, policyFiles, err := listPolicyDir(fsys)
	if err != nil {
		return nil, err
	}
	rs, err := loadSchema(fsys, schemaFile)
	if err != nil {
		return nil, err
	}
	if err := checkSchemaFitsRequests(rs, schemaFile); err != nil {
		return nil, err
	}
	c := newCompiler(rs)
	for _, name := range policyFiles {
		c.addFile(fsys, name)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return c.engine(), nil
}

func listPolicyDir(fsys fs.FS) (schemaFile string, policyFiles []string, err error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return "", nil, fmt.Errorf("read policy directory: %w", err)
	}
	var schemas []string
	for _, e := range entries {
		switch {
		case e.IsDir():
		case path.Ext(e.Name()) == ".cedarschema":
			schemas = append(schemas, e.Name())
		case path.Ext(e.Name()) == ".cedar":
			policyFiles = append(policyFiles, e.Name())
		}
	}
	if len(schemas) != 1 {
		return "", nil, &PolicyError{File: ".", Reason: fmt.Sprintf("want exactly one .cedarschema file, found %d", len(schemas))}
	}
	if len(policyFiles) == 0 {
		return "", nil, &PolicyError{File: ".", Reason: "no .cedar policy files"}
	}
	return schemas[0], policyFiles, nil
}

func loadSchema(fsys fs.FS, name string) (*resolved.Schema, error) {
	text, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, &PolicyError{File: name, Reason: "cannot read the file: " + err.Error()}
	}
	var s schema.Schema
	s.SetFilename(name)
	if err := s.UnmarshalCedar(text); err != nil {
		line, reason := schemaParseError(name, err)
		return nil, &PolicyError{File: name, Line: line, Reason: reason}
	}
	rs, err := s.Resolve()
	if err != nil {
		names := quotedNames(err.Error())
		line := 0
		if len(names) > 0 {
			line = lineOfName(text, 0, len(text), names[len(names)-1])
		}
		return nil, &PolicyError{File: name, Line: line, Reason: err.Error()}
	}
	return rs, nil
}

// schemaParseError splits "file:line:col: reason" from the schema parser.
func schemaParseError(name string, err error) (int, string) {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, name+":")
	if !ok {
		return 0, msg
	}
	lineText, rest, _ := strings.Cut(rest, ":")
	line, convErr := strconv.Atoi(lineText)
	if convErr != nil {
		return 0, msg
	}
	if _, reason, ok := strings.Cut(rest, ": "); ok {
		return line, reason
	}
	return line, msg
}

var (
	// cedar-go's policy parser reports positions as <input>:line:col.
	parsePosition = regexp.MustCompile(`<input>:(\d+):(\d+)`)
	// Validation messages quote names in backticks, resolution in quotes.
	quotedName = regexp.MustCompile("`([^`]+)`|\"([^\"]+)\"")
)

// parseErrorLine returns the line a parse error points at and the message
// without cedar-go's placeholder file name.
func parseErrorLine(err error) (int, string) {
	msg := err.Error()
	m := parsePosition.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	line, _ := strconv.Atoi(m[1])
	msg = strings.Replace(msg, m[0], "line "+m[1]+" column "+m[2], 1)
	return line, strings.TrimPrefix(msg, "parser error: ")
}

func quotedNames(msg string) []string {
	var names []string
	for _, m := range quotedName.FindAllStringSubmatch(msg, -1) {
		names = append(names, m[1]+m[2])
	}
	return names
}

// accessPrefix is how a policy reaches an entity type's attributes, to find
// "attribute `ward` on entity type `Staff`" at principal.ward rather than at
// resource.ward.
var accessPrefix = map[string]string{"Staff": "principal.", "Patient": "resource."}

// lineOfError finds the line of the policy text[from:to] that a validation
// message is about, or 0.
func lineOfError(text []byte, from, to int, msg string) int {
	names := quotedNames(msg)
	if len(names) == 0 {
		return 0
	}
	if strings.HasPrefix(msg, "attribute ") && len(names) > 1 {
		if prefix, ok := accessPrefix[names[1]]; ok {
			if l := lineOfName(text, from, to, prefix+names[0]); l > 0 {
				return l
			}
		}
	}
	return lineOfName(text, from, to, names[0])
}

// lineOfName finds the line of the policy text[from:to] where a name from
// an error message appears: in the policy's body (after its annotations),
// outside comments, first as code (an attribute after a dot, an entity
// type), then inside a string literal (an entity ID such as "nures"). It
// returns 0 when the name is not found.
func lineOfName(text []byte, from, to int, name string) int {
	if name == "" || from < 0 || to > len(text) || from > to {
		return 0
	}
	src := string(text[from:to])
	code := maskSource(src, true)
	body := bodyStart(code)
	at := findWord(code, body, name, true)
	if at < 0 {
		at = findWord(code, body, name, false)
	}
	if at < 0 {
		// An entity ID lives in a string: Role::"nures", Action::"raed".
		quoted := `"` + name + `"`
		if strings.Contains(name, `::"`) {
			quoted = name
		}
		if i := strings.Index(maskSource(src, false)[body:], quoted); i >= 0 {
			at = body + i
		}
	}
	if at < 0 {
		return 0
	}
	return 1 + strings.Count(string(text[:from+at]), "\n")
}

// bodyStart is the offset of the effect keyword, past the annotations.
func bodyStart(code string) int {
	for _, kw := range []string{"permit", "forbid"} {
		if i := findWord(code, 0, kw, false); i >= 0 {
			return i
		}
	}
	return 0
}

// findWord returns the offset of the first whole-word name in s at or after
// from; afterDot demands a '.' just before it (an attribute access).
func findWord(s string, from int, name string, afterDot bool) int {
	for i := from; i <= len(s)-len(name); {
		j := strings.Index(s[i:], name)
		if j < 0 {
			return -1
		}
		at := i + j
		if wordBoundary(s, at-1) && wordBoundary(s, at+len(name)) && (!afterDot || at > 0 && s[at-1] == '.') {
			return at
		}
		i = at + 1
	}
	return -1
}

func wordBoundary(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return true
	}
	c := s[i]
	return !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
}

// maskSource blanks out comments, and string literals too when
// maskStrings is set, keeping every newline so offsets and lines hold.
func maskSource(src string, maskStrings bool) string {
	out := []byte(src)
	inString, inComment, escaped := false, false, false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inComment:
			if c == '\n' {
				inComment = false
				continue
			}
			out[i] = ' '
		case inString:
			closing := c == '"' && !escaped
			escaped = c == '\\' && !escaped
			if closing {
				inString = false
			} else if maskStrings && c != '\n' {
				out[i] = ' '
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			inComment = true
			out[i] = ' '
		case c == '"':
			inString, escaped = true, false
		}
	}
	return string(out)
}

// compiler gathers the policies of every file, checking each one.
type compiler struct {
	schema    *resolved.Schema
	validator *validate.Validator
	policies  []compiled
	ids       map[string]string // @id -> file:line where first seen
	errs      []error
}

func newCompiler(rs *resolved.Schema) *compiler {
	return &compiler{schema: rs, validator: validate.New(rs), ids: map[string]string{}}
}

func (c *compiler) addFile(fsys fs.FS, name string) {
	text, err := fs.ReadFile(fsys, name)
	if err != nil {
		c.errs = append(c.errs, &PolicyError{File: name, Reason: "cannot read the file: " + err.Error()})
		return
	}
	list, err := cedar.NewPolicyListFromBytes(name, text)
	if err != nil {
		line, reason := parseErrorLine(err)
		c.errs = append(c.errs, &PolicyError{File: name, Line: line, Reason: reason})
		return
	}
	if len(list) == 0 {
		c.errs = append(c.errs, &PolicyError{File: name, Reason: "no policies in file"})
		return
	}
	for i, p := range list {
		end := len(text)
		if i+1 < len(list) {
			end = list[i+1].Position().Offset
		}
		c.addPolicy(p, text, end)
	}
}

func (c *compiler) addPolicy(p *cedar.Policy, text []byte, end int) {
	pos := p.Position()
	meta, errs := policyMetaOf(p)
	meta.file, meta.line = pos.Filename, pos.Line
	fail := func(line int, reason string) {
		c.errs = append(c.errs, &PolicyError{File: pos.Filename, Line: line, Policy: meta.id, Reason: reason})
	}
	for _, reason := range errs {
		fail(pos.Line, reason)
	}
	if meta.id != "" {
		if first, dup := c.ids[meta.id]; dup {
			fail(pos.Line, "duplicate @id, first used at "+first)
		} else {
			c.ids[meta.id] = fmt.Sprintf("%s:%d", pos.Filename, pos.Line)
		}
	}
	for _, err := range c.validatePolicy(p) {
		line := pos.Line
		if l := lineOfError(text, pos.Offset, end, err.Error()); l > 0 {
			line = l
		}
		fail(line, err.Error())
	}
	c.policies = append(c.policies, compiled{meta: meta, policy: p})
}

// validatePolicy runs Cedar's validator and the enum-literal check; a
// validator panic on odd input is reported as an error, not a crash.
func (c *compiler) validatePolicy(p *cedar.Policy) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, fmt.Errorf("policy validator failed: %v", r))
		}
	}()
	ap := (*xast.Policy)(p.AST())
	if err := c.validator.Policy("", ap); err != nil {
		errs = append(errs, flatten(err)...)
	}
	return append(errs, c.checkLiterals(ap)...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// checkLiterals reports entity literals in conditions whose type or enum
// value the schema does not declare. cedar-go's validator (v1.9.1) accepts
// Role::"nures" silently; a typo there must stop start-up instead.
func (c *compiler) checkLiterals(p *xast.Policy) []error {
	var errs []error
	seen := map[types.EntityUID]bool{}
	for _, cond := range p.Conditions {
		xast.Inspect(xast.NewNode(cond.Body), func(n xast.IsNode) bool {
			if v, ok := n.(xast.NodeValue); ok {
				if uid, ok := v.Value.(types.EntityUID); ok && !seen[uid] {
					seen[uid] = true
					if err := c.checkEntityLiteral(uid); err != nil {
						errs = append(errs, err)
					}
				}
			}
			return true
		})
	}
	return errs
}

func (c *compiler) checkEntityLiteral(uid types.EntityUID) error {
	if uid.Type == typeAction {
		if _, ok := c.schema.Actions[uid]; !ok {
			return fmt.Errorf("unrecognized action `%s`", uid)
		}
		return nil
	}
	if enum, ok := c.schema.Enums[uid.Type]; ok {
		if !slices.Contains(enum.Values, uid) {
			return fmt.Errorf("`%s` is not a value of enum `%s`", uid.ID, uid.Type)
		}
		return nil
	}
	if _, ok := c.schema.Entities[uid.Type]; !ok {
		return fmt.Errorf("unrecognized entity type `%s`", uid.Type)
	}
	return nil
}

func (c *compiler) engine() *Engine {
	e := &Engine{meta: map[types.PolicyID]policyMeta{}}
	var decisive, flagAllow, flagDeny []namedPolicy
	for _, cp := range c.policies {
		id := types.PolicyID(cp.meta.id)
		e.meta[id] = cp.meta
		np := namedPolicy{id: id, policy: cp.policy}
		switch {
		case len(cp.meta.flags) == 0:
			decisive = append(decisive, np)
		case cp.meta.on == onAllow:
			flagAllow = append(flagAllow, np)
		case cp.meta.on == onDeny:
			flagDeny = append(flagDeny, np)
		default:
			flagAllow = append(flagAllow, np)
			flagDeny = append(flagDeny, np)
		}
	}
	e.decisive, e.flagsOnAllow, e.flagsOnDeny = newPolicyList(decisive), newPolicyList(flagAllow), newPolicyList(flagDeny)
	return e
}

type compiled struct {
	meta   policyMeta
	policy *cedar.Policy
}
