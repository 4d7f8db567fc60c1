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
// Sender is the device side of the link (what the simulator and
// `medsec device send` use); Simulate plays a fleet of devices.
package gateway
