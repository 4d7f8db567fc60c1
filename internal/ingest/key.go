package ingest

import (
	"context"
	"crypto/ecdh"
	"fmt"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/keys"
)

// IngestionKeyName names the system secret the hospital's ingestion key is
// derived from. Rotation adds a new name ("phd-ingestion-2") and keeps the
// old one for messages still on their way.
const IngestionKeyName = "phd-ingestion-1"

// IngestionKey returns the hospital's ECDH P-256 ingestion key, the one
// devices encrypt their readings to. It is derived from a system secret the
// key provider keeps wrapped, so no private key is stored in plaintext.
func IngestionKey(ctx context.Context, kr *keys.Keyring) (*ecdh.PrivateKey, error) {
	secret, err := kr.SystemKey(ctx, IngestionKeyName)
	if err != nil {
		return nil, fmt.Errorf("ingestion key: %w", err)
	}
	k, err := devices.DeriveP256(secret, IngestionKeyName)
	if err != nil {
		return nil, fmt.Errorf("ingestion key: %w", err)
	}
	return k.ECDH()
}
