// Package device is the medsec device SDK: what a vendor's personal health
// device (the IEEE 11073 "agent") needs to take part in the protocol of
// package phd. The device makes its own key pair (P-256 or Ed25519) and
// never lets it go; it asks for a certificate with a PKCS#10 request naming
// its serial and model; it numbers its messages with a counter that
// survives restarts; and it seals batches of readings for the hospital.
// Generator plays realistic readings for the simulator.
//
// It serves the paper's location 1 (the PHD, Table 4): data protected by
// the protocol itself instead of by the Bluetooth or Wi-Fi link it crosses,
// and a device that identifies its patient by public-key authentication.
// Sending over mutual TLS to a gateway is not part of this package.
package device
