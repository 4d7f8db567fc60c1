// Package guard keeps malicious code out of the hospital: it scans import
// media (CD/DVD/USB trees, .iso images, zip archives) and single uploads
// before anything reaches PACS, describes and seals what must be
// quarantined, and (in package guard/agent) protects legacy PACS
// workstations that can no longer take a security product.
//
// It serves location 5 of the paper (PACS, creation/collection: DICOM
// import through malicious-code scanning) and the "medical environment
// preventative technology" at locations 3, 4 and 6.
//
// medsec's own detectors are always on. The one general antivirus
// products miss is the DICOM Part 10 preamble: its 128 free bytes may
// hold a Windows PE, ELF or Mach-O header, so one file is a valid image
// and a runnable program at once (CVE-2019-11687). ClamAV, through
// clamd's INSTREAM command, is optional and runs beside them.
//
// Every finding is a value with a reason a person can act on; a file
// with any finding of severity high or above is malicious and must not be
// imported. Bad input (truncated DICOM, huge declared lengths, bombs,
// symlink loops, unreadable files) gives a finding for that file and the
// scan goes on; memory stays bounded because content is streamed and
// every declared length is checked before it is trusted.
package guard
