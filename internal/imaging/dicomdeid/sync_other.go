//go:build !linux

package dicomdeid

import (
	"errors"
	"os"
)

// syncOutputs syncs each file of the batch where there is no syncfs(2).
func syncOutputs(_ string, batch []pendingFile) error {
	var errs []error
	for _, p := range batch {
		f, err := os.OpenFile(p.tmp, os.O_RDWR, 0)
		if err == nil {
			err = errors.Join(f.Sync(), f.Close())
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
