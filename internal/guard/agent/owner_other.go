//go:build !unix

package agent

import "io/fs"

// owner is not tracked here yet; a Windows port reads the file's owner SID.
func owner(fs.FileInfo) (uid, gid int) { return -1, -1 }
