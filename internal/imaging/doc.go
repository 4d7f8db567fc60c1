// Package imaging is PACS intake (location 5 of the paper: creation and
// collection of images): a CD/DVD/USB tree, .iso image or zip archive of
// DICOM studies is scanned file by file by package guard; what passes is
// stored through the one door (records.Door.StoreImaging), sealed with the
// patient's data key, indexed by study, series and instance UID and
// matched to the patient by medical record number, with the 128-byte
// preamble zeroed; everything that fails is kept in quarantine, sealed
// with a system key (it may belong to no known patient), with its
// findings. Only a security officer signed in with a second factor
// releases or deletes a quarantined file, with a reason, audited. Every
// import is audited with the media's origin.
//
// Nothing here reads or writes patient data except through the door; the
// quarantine holds files, not records, and never names a patient.
package imaging
