// Package devices is the hospital's authority over device identities: the
// device certificate authority (ECDSA P-256, X.509), one-time enrollment
// tokens, the registry of personal health devices and security gateways with
// their status (active, suspended, revoked, lost), certificate renewal, and
// the signed status list through which gateways learn of a revocation within
// seconds.
//
// It serves the paper's locations 1 and 2 (Table 4): "PHD public-key
// authentication" — each device holds its own key pair and a short-lived
// certificate that binds its serial and model to one patient's pseudonym —
// and the mutual authentication between gateways and the hospital. The
// hospital trusts a reading because the registry says which key speaks for
// which patient, not because of the Bluetooth or Wi-Fi link it crossed.
//
// Enrollment: an administrator issues a token for (patient, model); only the
// token's SHA-256 is stored. The device makes its own key pair and trades
// the token and a PKCS#10 request for a certificate. Enrollment, renewal and
// every status change are written to the audit log.
package devices
