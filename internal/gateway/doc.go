// Package gateway is medsec's security gateway (`medsec gateway`): the
// TLS 1.3 endpoint personal health devices send their sealed readings to,
// between the patient's home or ward and the hospital.
//
// It serves the paper's location 2 (Table 4, the mobile / security
// gateway): it authenticates every device by its certificate (chain,
// validity, the hospital's status list polled every second, the binding of
// device and patient), checks each message's signature, sequence number
// (a persisted replay window), size and rate, and writes it to a durable
// queue on its own disk before it acknowledges — so an acknowledged reading
// survives a crash of the gateway (kill -9) and an outage of the hospital.
// It forwards the queue to the hospital over mutual TLS with retries and
// exponential backoff; the hospital stores each message once, so delivery
// is exactly once. The gateway never holds the hospital's key: it checks
// who sent a message, it cannot read what was measured.
//
// Every refused message is answered with a reason code, counted in
// medsec_gateway_rejected_total{reason}, and recorded in the queue
// database for the hospital's audit log: one record per (subject, reason,
// minute) with a count, the subject being the device serial when its
// certificate verified, else the fingerprint of the certificate shown,
// else the caller's address (never a patient's: an address is kept only
// for callers without a certificate). At most 60 new records a minute and
// 10,000 waiting; beyond, refusals are counted in one record per reason
// and minute from "many" sources, so a flood adds to counts, not rows. A
// record is sealed once it stops counting (a second untouched, or its
// minute over) and posted as JSON to the hospital's POST
// /ingest/v1/refusals over the same mutual TLS as bundles; the hospital
// audits each record id once (gateway.refuse) and the gateway deletes a
// record only once the hospital answered it, retrying with backoff
// through outages.
//
// Sender is the device side of the link (what the simulator and
// `medsec device send` use); Simulate plays a fleet of devices.
package gateway
