// Package ingest is the hospital side of the PHD pipeline: the endpoint of
// `medsec serve` that takes bundles of device messages from security
// gateways over mutual TLS, verifies every message again end to end (the
// device's registry entry, its binding to the patient, its signature, its
// age), decrypts it with the hospital's ingestion key, validates the
// measurements (catalog codes, UCUM units, physiological limits: out of
// range is stored flagged, malformed is refused), and stores the readings
// through the one door with a FHIR Provenance record (device → gateway →
// server) — one transaction and one audit event per device message.
//
// It serves the paper's location 3 (Table 4, the healthcare data server):
// what a patient's device measured is what the hospital stores, provably,
// and nobody in between could read or change it.
//
// Delivery is exactly once by message id. The door stores a message's
// readings and its audit event in one transaction; this package claims the
// message id before and marks it stored after. A crash between the two
// leaves a claim whose outcome the audit log decides: the door's event
// names the message (Principal.Source), so recovery marks it stored if the
// event exists and releases the claim if not.
package ingest
