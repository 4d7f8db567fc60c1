package access

import (
	"errors"
	"fmt"
)

// ErrDenied is returned by Decision.Err for a denied request. The door stops
// there (no data is decrypted) and the API answers 403 with the decision's
// reasons, which name policies, never patient data.
var ErrDenied = errors.New("access denied")

// ErrUnknownPurpose means a purpose-of-use code medsec does not know. The API
// answers 400 and lists the purposes of Purposes.
var ErrUnknownPurpose = errors.New("unknown purpose of use")

// PolicyError is a problem in a policy or schema file found by Load: the
// file, the line (0 when the whole file is at fault) and what is wrong.
// Start-up stops on it; the operator fixes the file named.
type PolicyError struct {
	File   string
	Line   int
	Policy string // the policy's @id, when known
	Reason string
}

func (e *PolicyError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Policy != "" {
		return fmt.Sprintf("%s: policy %s: %s", loc, e.Policy, e.Reason)
	}
	return fmt.Sprintf("%s: %s", loc, e.Reason)
}
