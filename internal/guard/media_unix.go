//go:build unix

package guard

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// fileKey identifies a file across names: device and inode.
type fileKey struct{ dev, ino uint64 }

func keyOf(st fs.FileInfo) (fileKey, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(sys.Dev), ino: uint64(sys.Ino)}, true
}

// openMedia opens a file for reading without blocking on a FIFO or device
// swapped in after the walk looked, and refuses anything not regular.
func openMedia(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("open %s: not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
