// Package imaging is PACS intake (location 5 of the paper: creation and
// collection of images): a CD/DVD/USB tree, .iso image or zip archive of
// DICOM studies is scanned file by file by package guard; what passes is
// stored through the one door (records.Door.StoreImaging), sealed with the
// patient's data key, indexed by study, series and instance UID and
// matched to the patient by medical record number, with the 128-byte
// preamble zeroed; everything that fails is kept in quarantine with its
// findings. Media arrive from `medsec import` (Intake.Import) or as one
// upload to `medsec serve` (API, Intake.ImportUpload: a file, zip or
// .iso held in memory, sent by a signed-in member of staff whose role is
// in ImportRoles); both take the same path through the scanner, the door
// and the quarantine.
//
// A quarantined file may belong to no known patient, so it is sealed with
// a data key of its own (package keys), and deleting it destroys that
// key. When its MRN belongs to a patient, now or once registered, the item
// records the patient's pseudonym: the data map (`medsec trace`) lists it
// and erasing the patient destroys it (the Intake is the lifecycle Source
// and Eraser of imaging). Only a security officer signed in with a second
// factor sees the quarantine (each read audited) and releases or deletes a
// file, with a reason, audited before any byte leaves.
//
// The media's origin as the operator typed it is sealed with the import's
// own key; audit events, alerts and the stored images name the import id
// and the media kind, and patients by pseudonym only.
package imaging
