// Package agent protects legacy PACS viewers and modality PCs that can no
// longer take security updates or a security product: it lets only
// allowlisted executables run (by SHA-256), watches protected directories
// for changes to content, owner and permissions, and reports alerts. It
// is the "medical environment preventative technology" of the paper for
// location 5 (PACS) and the timeworn systems at locations 3, 4 and 6.
//
// Detection is kept apart from the operating system: a ProcessSource
// lists processes and opens their binaries, a Stopper stops one. The
// Linux implementations read /proc and use pidfds; a Windows port adds
// its own pair and reuses everything else.
package agent
