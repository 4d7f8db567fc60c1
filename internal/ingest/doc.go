// Package ingest is the hospital side of the PHD pipeline: the endpoint of
// `medsec serve` that takes bundles of device messages from security
// gateways over mutual TLS, verifies every message again end to end (the
// device's registry entry, its binding to the patient, its signature, its
// age), decrypts it with the hospital's ingestion key, validates the
// measurements (catalog codes, UCUM units, physiological limits: out of
// range is stored flagged, malformed is refused), and stores the readings
// through the one door with a FHIR Provenance record (device → gateway →
// server). The messages of one patient in one gateway bundle are stored in
// one door transaction with one audit event naming each of them (with a
// message a minute per patient that is one message; under load it turns
// hundreds of commits into a few).
//
// It serves the paper's location 3 (Table 4, the healthcare data server):
// what a patient's device measured is what the hospital stores, provably,
// and nobody in between could read or change it.
//
// Delivery is exactly once by message id. The door stores the readings and
// the audit event naming their messages in one transaction; this package claims the
// message id before and marks it stored after. A crash between the two
// leaves a claim whose outcome the audit log decides: the door's event
// names the message (Principal.Source), so recovery marks it stored if the
// event exists and releases the claim if not.
//
// Gateways also post the records of device messages they refused
// (PathRefusals, JSON RefusalBatch; only an active enrolled gateway may):
// each record id is audited once as a gateway.refuse event (actor the
// gateway, resource device/SERIAL and the patient's pseudonym when the
// registry knows the device, outcome denied, reason code and count), in
// one transaction with its ledger row, and a subject that keeps failing
// signature or certificate checks raises one authentication alert per
// window.
package ingest
