//go:build !linux

package agent

import (
	"errors"
	"fmt"
	"runtime"
)

// SystemProcesses has no implementation on this operating system yet; a
// Windows port provides its own ProcessSource and Stopper here.
func SystemProcesses() (ProcessSource, Stopper, error) {
	return nil, nil, fmt.Errorf("guard agent on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
