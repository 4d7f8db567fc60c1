// Package access decides whether a member of staff may read, search, write,
// export or break the glass on one class of one patient's data, and says why.
//
// The rules are Cedar policies (the repository's policies/ directory, carried
// in the binary), validated against a Cedar schema when the Engine is loaded:
// a bad policy file stops start-up with its file, line and reason. Decide is a
// pure function of a Request, a plain Go value the one door to patient data
// (records.Door) fills from the database before anything is decrypted; it does
// no I/O and holds no per-patient state. Its Decision (allow or deny, flags
// for review, the policies that decided and their reasons) goes into the
// audit log as it is.
//
// A decision weighs role, department, care relationship, the patient's
// consent, purpose of use (HL7 PurposeOfUse), sensitivity labels, time-boxed
// grants and break-glass. It serves the paper's locations 4 (HIS: OCS and
// EMR) and 6 (main server: access control, user identification, authority),
// against the threats of Table 2: excessive access rights, arbitrary access by
// internal staff, leakage by external maintenance staff, omitted consent and
// use for other purposes.
package access
