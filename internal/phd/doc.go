// Package phd is the personal health device (PHD) protocol of medsec: the
// measurement catalog (IEEE 11073-10101 nomenclature codes, UCUM units,
// LOINC vital-sign codes), validation of readings, their FHIR R4 Observation
// form as the HL7 Personal Health Device IG renders it, a compact CBOR form
// for storage, the COSE envelope a device sends (COSE_Sign1 over a
// COSE_Encrypt to the hospital's ingestion key), and the replay window.
//
// It serves the paper's locations 1–3 (Table 4): the PHD itself (through the
// device SDK in package phd/device), the security gateway, which checks who
// sent a message without being able to read it (ParseSigned, Verify, Window),
// and the healthcare data server, which verifies again, decrypts (Open),
// validates (Assess) and stores (EncodeReading) what the device measured.
//
// IEEE 11073-20601 leaves security to the transport (often Bluetooth); here
// the data protects itself end to end, so nobody between the patient's
// device and the hospital can read or change it unnoticed.
//
// Every rejection carries a Reason: a short stable string a person can act on
// and a metric can use as a label.
package phd
